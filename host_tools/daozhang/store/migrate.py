"""Versioned schema migrations, per component, applied in order and recorded.

Each component (the collector's tables, the settlement tables, ...) owns an ordered list of
`Migration`s in its own module. The store knows none of them: whoever opens it hands it the
components to bring up to date (`daozhang.schema` lists the product's). A migration is
applied once, inside a transaction, and recorded in `schema_migrations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daozhang.store.engine import Store


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str  # statements separated by ';' on their own; may use {blob} and {id}


# (component name, its migrations), in the order the components apply.
Component = tuple[str, Sequence["Migration"]]


def migrate(store: Store, components: Sequence[Component]) -> list[str]:
    """Apply every migration of `components` not applied yet; return the names applied now."""
    applied_now: list[str] = []
    with store.transaction() as tx:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
            " PRIMARY KEY (component, version))"
        )
    for component, migrations in components:
        with store.transaction() as tx:
            if store.dialect == "postgresql":
                # Several collectors may start at once: one migrates, the others wait.
                tx.execute("SELECT pg_advisory_xact_lock(7427001)")
            done = {
                int(r[0])
                for r in tx.execute(
                    "SELECT version FROM schema_migrations WHERE component = ?", (component,)
                )
            }
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                for statement in _statements(store.render(migration.sql)):
                    tx.execute(statement)
                tx.execute(
                    "INSERT INTO schema_migrations (component, version, name) VALUES (?, ?, ?)",
                    (component, migration.version, migration.name),
                )
                applied_now.append(f"{component}/{migration.version:04d}_{migration.name}")
    return applied_now


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";\n") if s.strip().strip(";").strip()]
