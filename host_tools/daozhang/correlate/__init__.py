"""Correlation: receipts ↔ settlement rows ↔ payouts, one finding each (DESIGN §2.2).

`analyse(store, as_of, ...).findings` reads the store once and classifies in memory;
`render.to_dict` turns a finding into the JSON shape of §2.2. See README.md.
"""
