"""The order pipeline, list-shaped: every step takes a list of orders (a webhook is a list of one, a
micro-batch a burst, a backfill thousands) and lives in its own module.

``runner`` claims the runs, locks their orders, runs ``STEPS`` and records each run's outcome;
``context`` holds the entries, the clients and each entry's own error; the steps, in order: ``pull``,
``contacts`` (HubSpot), ``customers``, ``items``, ``invoices`` (create, update, void), ``payments``,
``refunds`` (QuickBooks); ``bindings`` and ``qb_batch`` look up and write bindings, locks, QuickBooks batch
creates and ``IN`` look-ups for many objects at once. ``sync.preview`` runs the same steps with the writes
recorded instead of sent.
"""
