"""Network fault injection for tests, benchmarks and the fleet simulation."""
