"""Packaged configuration files (``default_rules.yaml``); read with ``importlib.resources``."""
