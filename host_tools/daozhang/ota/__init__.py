"""Over-the-air updates: bundles of the compiled agent with a manifest (`bundle.py`), offered to
each device with an HMAC of the manifest under its key (DESIGN §1.6)."""
