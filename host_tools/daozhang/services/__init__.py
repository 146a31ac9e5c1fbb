"""Real servers started for tests, the demo and the simulation: Mosquitto and PostgreSQL."""
