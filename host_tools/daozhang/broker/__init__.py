"""The project's Mosquitto configuration: TLS, per-device identity and topic ACLs."""
