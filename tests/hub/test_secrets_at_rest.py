"""Secrets at rest, before and after: migration 0008 scrubs the rows written before the hub scrubbed as it
writes (generic credential patterns, and the connections' own secrets it decrypts with the hub's key), on
SQLite and PostgreSQL; and the embedded instance (folder, SQLite file and its -wal/-shm files) is
readable by its owner only."""

from __future__ import annotations

import json
import os
import stat
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from hub import db, scrubbing
from hub.runtime import Hub
from hub.settings import Settings

NOW = datetime(2026, 11, 30, 12, 0)


def _tables() -> dict[str, sa.TableClause]:
    """The tables as migration 0007 left them (plain types: nothing is scrubbed on the way in)."""
    def t(name: str, *columns: sa.ColumnClause) -> sa.TableClause:
        return sa.table(name, *columns)

    c = sa.column
    return {
        "merchants": t("merchants", c("id"), c("name"), c("created_at")),
        "connections": t("connections", c("id"), c("merchant_id"), c("platform"), c("account"), c("status"),
                         c("status_reason"), c("secrets"), c("settings", sa.JSON), c("created_at"), c("updated_at")),
        "sync_runs": t("sync_runs", c("id"), c("merchant_id"), c("kind"), c("source_platform"), c("source_id"),
                       c("status"), c("attempts"), c("reason"), c("error_code"), c("created_at"), c("updated_at")),
        "sync_attempts": t("sync_attempts", c("id"), c("run_id"), c("number"), c("started_at"), c("error"),
                           c("error_code"), c("excerpt", sa.JSON)),
        "sync_steps": t("sync_steps", c("id"), c("run_id"), c("attempt"), c("step"), c("outcome"), c("message"),
                        c("at")),
        "audit_log": t("audit_log", c("id"), c("at"), c("actor"), c("action"), c("detail", sa.JSON)),
        "alerts_sent": t("alerts_sent", c("id"), c("cause"), c("channel"), c("sent_at"), c("ok"),
                         c("detail", sa.JSON)),
        "mapping_rules": t("mapping_rules", c("merchant_id"), c("overrides", sa.JSON), c("version"),
                           c("updated_at"), c("problems", sa.JSON)),
        "oauth_states": t("oauth_states", c("id"), c("platform"), c("state_hash"), c("actor"), c("status"),
                          c("reason"), c("created_at"), c("expires_at")),
    }


def test_migration_0008_scrubs_the_rows_written_before(database_url: str, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    held_token = f"plainTokenOnlyTheConnectionKnows{uuid.uuid4().hex}"     # no known format
    refresh = f"plainRefreshOnlyTheConnectionKnows{uuid.uuid4().hex}"
    assert scrubbing.scrub_text(held_token) == held_token    # nothing holds it yet: only decrypting can find it
    ciphertext = Fernet(key.encode()).encrypt(json.dumps({"access_token": held_token,
                                                          "refresh_token": refresh}).encode()).decode()
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine, revision="0007")
        tb = _tables()
        many = 1200     # more than one page of the migration
        with engine.begin() as conn:
            conn.execute(sa.insert(tb["merchants"]).values(id=1, name="Acme", created_at=NOW))
            conn.execute(sa.insert(tb["connections"]).values(
                id=1, merchant_id=1, platform="quickbooks", account="123", status="needs_reconnect",
                status_reason=f"Intuit said: invalid_grant for {refresh}", secrets=ciphertext, settings={},
                created_at=NOW, updated_at=NOW))
            conn.execute(sa.insert(tb["sync_runs"]), [
                dict(id=n, merchant_id=1, kind="order", source_platform="shopify", source_id=str(n), status="failed",
                     attempts=1, reason=f"quickbooks: Invalid token {held_token} (code 3200)" if n % 2 else
                     "quickbooks: the customer is inactive (code 6240)", error_code="quickbooks:3200",
                     created_at=NOW, updated_at=NOW) for n in range(1, many + 1)])
            conn.execute(sa.insert(tb["sync_attempts"]).values(
                id=1, run_id=1, number=1, started_at=NOW, error=f"Authorization: Bearer {held_token}",
                error_code="quickbooks:3200", excerpt={
                    "request": {"method": "POST", "url": "https://qb.example/v3/company/123/invoice",
                                "body": f'{{"note": "{refresh}"}}'},
                    "response": {"status": 401, "body": '{"access_token": "shpat_0123456789abcdef0123456789abcdef"}'}}))
            conn.execute(sa.insert(tb["sync_steps"]).values(id=1, run_id=1, attempt=1, step="invoice",
                                                            outcome="skipped", message=f"echo {held_token}", at=NOW))
            conn.execute(sa.insert(tb["audit_log"]).values(id=1, at=NOW, actor="cli", action="run.skip",
                                                           detail={"reason": f"pasted {held_token}", "runs": [1]}))
            conn.execute(sa.insert(tb["alerts_sent"]).values(id=1, cause="run.failed:auth:quickbooks:3200",
                                                             channel="webhook", sent_at=NOW, ok=False,
                                                             detail={"error": f"refresh_token={refresh}"}))
            conn.execute(sa.insert(tb["mapping_rules"]).values(merchant_id=1, overrides={}, version=1, updated_at=NOW,
                                                               problems={"error": f"query with {held_token}"}))
            conn.execute(sa.insert(tb["oauth_states"]).values(
                id=1, platform="hubspot", state_hash="0" * 64, actor="x@example.com", status="failed",
                reason="HubSpot: client_secret=hs-app-secret-never-shown refused", created_at=NOW, expires_at=NOW))
    finally:
        engine.dispose()

    hub = Hub(Settings.from_env(database_url=database_url, instance_path=tmp_path / "instance", encryption_key=key))
    try:
        with hub.engine.connect() as conn:
            dump = "\n".join(repr(tuple(row)) for table in (*_tables(), "alembic_version")
                             for row in conn.execute(sa.text(f"SELECT * FROM {table}")))
            assert conn.execute(sa.text("SELECT count(*) FROM sync_runs WHERE reason LIKE '%[redacted]%'")).scalar() \
                == many // 2
    finally:
        hub.close()
    for leaked in (held_token, refresh, "shpat_0123456789abcdef", "hs-app-secret-never-shown"):
        assert leaked not in dump, leaked
    assert "quickbooks: Invalid token [redacted] (code 3200)" in dump          # the rest is still useful
    assert "quickbooks: the customer is inactive (code 6240)" in dump and "Bearer [redacted]" in dump
    assert "run.failed:auth:quickbooks:3200" in dump and ciphertext in dump   # ciphertext left as it is


def test_the_embedded_instance_is_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        instance = tmp_path / "instance"
        instance.mkdir(mode=0o755)
        stale = instance / "o2c.sqlite3-wal"    # left by an older version with the default mode
        stale.write_bytes(b"")
        stale.chmod(0o644)
        hub = Hub(Settings.from_env(instance_path=instance, database_url=f"sqlite:///{instance / 'o2c.sqlite3'}",
                                    encryption_key=None))
        try:
            with hub.session() as s:
                s.execute(sa.text("INSERT INTO merchants (name, created_at) VALUES ('Acme', CURRENT_TIMESTAMP)"))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in instance.iterdir()}
        finally:
            hub.close()
        assert stat.S_IMODE(instance.stat().st_mode) == 0o700
        assert {"o2c.sqlite3", "o2c.sqlite3-wal", "o2c.sqlite3-shm", "encryption.key"} <= set(modes)
        assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}
    finally:
        os.umask(old_umask)


def test_a_new_sqlite_file_elsewhere_is_owner_only_too(tmp_path: Path) -> None:
    path = tmp_path / "made" / "here" / "hub.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        engine.dispose()
