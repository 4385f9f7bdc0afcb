"""``o2c demo`` (``demo.run``) and the simulated platforms it runs (``demo.simulators``), also used by the tests
and the benchmarks."""
