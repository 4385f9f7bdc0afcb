"""Engine, sessions and schema migrations (Alembic) for SQLite and PostgreSQL.

The embedded mode's SQLite file (and its ``-wal``/``-shm`` companions, which SQLite creates with the
database file's mode) is readable by its owner only, and so is the instance folder that holds it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from hub.crypto import SecretBox

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_folder(path: Path) -> Path:
    """``path`` as a folder only its owner may enter (mode 0700), made if missing; returns it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path, 0o700)
    return path


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite database file owner-only (0600) before SQLite opens it, and tighten an existing
    one and its companions (SQLite gives ``-wal``/``-shm`` the database file's mode)."""
    if not path.parent.exists():
        private_folder(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        return  # not ours to create (read-only place): SQLite will say so
    for suffix in SQLITE_SUFFIXES:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _owner_only(companion, 0o600)


def _owner_only(path: Path, mode: int) -> None:
    try:
        if os.stat(path).st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError:  # owned by someone else: leave it as the operator set it
        pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite_file(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(engine: Engine, *, box: SecretBox | None = None, revision: str = "head") -> None:
    """Bring the schema to the newest migration (safe when several processes start at once). ``box``: the
    hub's secrets, for the migrations that need to read the connections' secrets (0008)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(720201)"))
        cfg.attributes["connection"] = conn
        cfg.attributes["secret_box"] = box
        command.upgrade(cfg, revision)


@contextlib.contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
