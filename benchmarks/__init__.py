"""Benchmarks of the hub against the simulated platforms (``python -m benchmarks``; see ``benchmarks.run``)."""
