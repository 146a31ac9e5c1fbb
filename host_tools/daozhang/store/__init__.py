"""The store: one interface, two engines chosen by URL.

`open_store("sqlite:///path.db")` is the embedded default; `open_store("postgresql://...")`
lets several collectors share one database. Callers write SQL once, with `?` placeholders and
the portable subset both engines accept; `Store.transaction()` commits on a clean exit.
"""

from daozhang.store.engine import Row, Store, Transaction, is_transient, open_store

__all__ = ["Row", "Store", "Transaction", "is_transient", "open_store"]
