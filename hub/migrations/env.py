from alembic import context

from hub.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # command-line use: alembic -x url=...
    from hub.db import make_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=<SQLAlchemy URL> ...")
    connection = make_engine(url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
