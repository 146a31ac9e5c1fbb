"""Fleet views over the store: one row per device, worst first."""
