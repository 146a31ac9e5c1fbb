"""Reports of a correlation run: terminal table (rich), JSON, CSV, self-contained HTML."""
