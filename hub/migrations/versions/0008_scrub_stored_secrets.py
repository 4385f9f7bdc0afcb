"""scrub secrets from the texts already stored (run reasons, attempt errors and excerpts, step messages,
connection reasons, audit and alert details, mapping checks, OAuth and key-exchange reasons)

From this revision on the columns' types scrub every value as it is written (``hub.scrubbing``); this
cleans what was written before: credential-looking values everywhere, and the connections' own secrets
when the hub's key can open them (the hub passes its SecretBox; from the alembic command line the key
is found as the hub finds it: O2C_ENCRYPTION_KEY or the instance's key file). Rows are read and
rewritten in pages of 500, and only the rows that change are written: safe to run on a big database and
idempotent.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import context, op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PAGE = 500
# table -> (primary key, text columns (with their length limit), JSON columns)
COLUMNS = {
    'sync_runs': ('id', {'reason': None, 'error_code': 100}, ()),
    'sync_attempts': ('id', {'error': None, 'error_code': 100}, ('excerpt',)),
    'sync_steps': ('id', {'message': None}, ()),
    'connections': ('id', {'status_reason': None}, ()),
    'audit_log': ('id', {}, ('detail',)),
    'alerts_sent': ('id', {}, ('detail',)),
    'mapping_rules': ('merchant_id', {}, ('problems',)),
    'oauth_states': ('id', {'reason': None}, ()),
    'pending_authorizations': ('id', {'reason': None}, ()),
}


def upgrade() -> None:
    from hub import scrubbing

    conn = op.get_bind()
    _hold_connection_secrets(conn)
    for name, (key, texts, jsons) in COLUMNS.items():
        table = sa.table(name, sa.column(key, sa.Integer),
                         *(sa.column(c, sa.Text) for c in texts), *(sa.column(c, sa.JSON) for c in jsons))
        pk = table.c[key]
        last = None
        while True:
            q = sa.select(table).order_by(pk).limit(PAGE)
            if last is not None:
                q = q.where(pk > last)
            rows = conn.execute(q).mappings().all()
            if not rows:
                break
            for row in rows:
                changes = {}
                for column, limit in texts.items():
                    value = row[column]
                    if isinstance(value, str):
                        clean = scrubbing.scrub_text(value)
                        clean = clean[:limit] if limit else clean
                        if clean != value:
                            changes[column] = clean
                for column in jsons:
                    value = row[column]
                    if value is not None:
                        clean = scrubbing.scrub_value(value)
                        if clean != value:
                            changes[column] = clean
                if changes:
                    conn.execute(sa.update(table).where(pk == row[key]).values(**changes))
            last = rows[-1][key]


def _hold_connection_secrets(conn) -> None:  # noqa: ANN001
    """Decrypt every connection's secrets once, so that ``hub.scrubbing`` holds them (rows no key opens
    are left to the generic patterns)."""
    box = _secret_box()
    if box is None:
        return
    table = sa.table('connections', sa.column('secrets', sa.Text))
    for (blob,) in conn.execute(sa.select(table.c.secrets).where(table.c.secrets.is_not(None))):
        try:
            box.decrypt(blob)       # holds what it opens
        except ValueError:
            continue


def _secret_box():  # noqa: ANN202
    box = context.config.attributes.get('secret_box')
    if box is not None:
        return box
    from hub.crypto import SecretBox
    from hub.settings import Settings

    settings = Settings.from_env()    # as the hub finds its key, without making a new one
    if settings.encryption_key or (settings.instance_path / 'encryption.key').exists():
        return SecretBox.from_settings(settings.encryption_key, settings.instance_path)
    return None


def downgrade() -> None:
    pass    # what was scrubbed cannot come back (and must not)
