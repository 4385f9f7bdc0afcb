"""``o2c rotate-key``: re-encrypt every secret at rest with the first key of ``O2C_ENCRYPTION_KEY``.

Rotation without downtime: set ``O2C_ENCRYPTION_KEY=new,old`` on every process (the first key encrypts,
all keys decrypt), run ``o2c rotate-key`` (in batches; values already under the new key are left alone,
so running it again rotates nothing), then drop the old key. A value rewritten by a running worker
meanwhile (a token refresh) is already under the new key: the rotation's compare-and-swap skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

import click
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select, update

from cli.base import _Fail, _hub, main
from hub.crypto import _instance_key
from hub.models import Connection
from hub.runtime import Hub

# every encrypted column: (model, its primary key, the column); add new ones here
ENCRYPTED_COLUMNS = ((Connection, Connection.id, Connection.secrets),)


@dataclass
class Rotation:
    rotated: int = 0
    current: int = 0        # already encrypted with the first key
    changed: int = 0        # rewritten by someone else while we worked (so already current)
    unreadable: list[str] | None = None


def keys_of(hub: Hub) -> list[str]:
    """The configured keys, first (encrypting) key first."""
    configured = hub.settings.encryption_key
    if configured:
        return [k.strip() for k in configured.split(",") if k.strip()]
    return [_instance_key(hub.settings.instance_path)]


def rotate(hub: Hub, *, batch_size: int = 200) -> Rotation:
    """Re-encrypt, batch by batch, every value not already under the first key."""
    keys = keys_of(hub)
    primary = Fernet(keys[0].encode())
    every = MultiFernet([Fernet(k.encode()) for k in keys])
    result = Rotation(unreadable=[])
    for model, pk, column in ENCRYPTED_COLUMNS:
        after = 0
        while True:
            with hub.session() as s:
                rows = s.execute(select(pk, column).where(pk > after, column.is_not(None))
                                 .order_by(pk).limit(batch_size)).all()
                if not rows:
                    break
                after = rows[-1][0]
                for row_id, token in rows:
                    try:
                        primary.decrypt(token.encode())
                    except InvalidToken:
                        pass
                    else:
                        result.current += 1
                        continue
                    try:
                        fresh = every.rotate(token.encode()).decode()
                    except InvalidToken:
                        result.unreadable.append(f"{model.__tablename__} {row_id}")
                        continue
                    swapped = s.execute(update(model).where(pk == row_id, column == token).values({column: fresh})
                                        .execution_options(synchronize_session=False))
                    if swapped.rowcount == 1:
                        result.rotated += 1
                    else:
                        result.changed += 1
    return result


@main.command("rotate-key")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 10_000),
              help="rows re-encrypted per transaction")
def rotate_key(batch_size: int) -> None:
    """Re-encrypt every stored secret with the first key of O2C_ENCRYPTION_KEY (idempotent)."""
    from hub import audit

    hub = _hub()
    try:
        result = rotate(hub, batch_size=batch_size)
        with hub.session() as s:
            audit.record(s, "cli", "keys.rotated", detail={"rotated": result.rotated, "current": result.current,
                                                           "unreadable": len(result.unreadable or [])})
    finally:
        hub.close()
    if result.unreadable:
        raise _Fail(f"rotated {result.rotated}, but {len(result.unreadable)} value(s) cannot be decrypted with any "
                    f"configured key: {', '.join(result.unreadable[:10])}")
    click.echo(f"{result.current + result.changed} already under the current key; rotated {result.rotated}")
