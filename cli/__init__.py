"""The ``o2c`` command and its groups (``cli.main:main`` is the console script)."""
