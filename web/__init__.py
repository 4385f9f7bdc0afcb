"""The web layer: the Flask app factory, the support console, the JSON API, the OAuth connect flows and the
gunicorn runner (``webhooks.py`` at the top level is its receiver). It may use ``sync`` and ``hub``; nothing
below it imports it."""
