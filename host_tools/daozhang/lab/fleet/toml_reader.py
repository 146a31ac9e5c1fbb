"""Typed access to a scenario file's TOML tables: each value checked for its type and range,
unknown keys refused, every error naming the file and the key path (`scenario FILE: a.b: ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daozhang.errors import InputError


class TableReader:
    """Typed access to one TOML table, with errors naming the file and the key path."""

    def __init__(self, path: Path, where: str, table: Any) -> None:
        self.path, self.where = path, where
        if not isinstance(table, dict):
            raise self.error("", f"expected a table, got {_kind(table)}")
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> InputError:
        at = ".".join(p for p in (self.where, key) if p) or "top level"
        return InputError(f"scenario {self.path}: {at}: {message}")

    def get(self, key: str, types: tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) and bool not in types:
            raise self.error(key, f"expected {_names(types)}, got a boolean")
        if not isinstance(value, types):
            raise self.error(key, f"expected {_names(types)}, got {_kind(value)}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = float(self.get(key, (int, float), default))
        if not low <= value <= high:
            raise self.error(key, f"{value:g} is out of range {low:g}..{high:g}")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value: int = self.get(key, (int,), default)
        if not low <= value <= high:
            raise self.error(key, f"{value} is out of range {low}..{high}")
        return value

    def optional_integer(self, key: str, low: int, high: int) -> int | None:
        """An integer in range, or None when the key is absent (still a known key here)."""
        if key not in self.table:
            self.used.add(key)
            return None
        return self.integer(key, low, low, high)

    def text(self, key: str, default: str, choices: tuple[str, ...] = ()) -> str:
        value: str = self.get(key, (str,), default)
        if choices and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def sub(self, key: str) -> TableReader:
        self.used.add(key)
        return TableReader(
            self.path, f"{self.where}.{key}" if self.where else key, self.table.get(key, {})
        )

    def items(self, key: str) -> list[TableReader]:
        self.used.add(key)
        value = self.table.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of tables ([[{key}]]), got {_kind(value)}")
        base = f"{self.where}.{key}" if self.where else key
        return [TableReader(self.path, f"{base}[{i}]", item) for i, item in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used)) or "none"
            raise self.error(unknown[0], f"unknown key (known here: {known})")


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(
        {
            int: "an integer",
            float: "a number",
            str: "a string",
            bool: "true/false",
            list: "an array",
        }[t]
        for t in types
    )
