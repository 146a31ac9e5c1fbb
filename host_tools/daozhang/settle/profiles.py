"""Settlement file profiles: how one acquirer's layout maps to daozhang's rows, as data.

A profile is a TOML table (the built-in ones in profiles.toml; users add theirs with
`--profiles FILE`). It names the code that reads the layout (`reader`), the encodings the
file may use, how to recognise it (`detect`), and for `table` profiles every field: which
column, how to read a time or an amount, how to map a type. Recognising a file is one place
(`pick`), so "looks like X" and "closest: Y, because ..." come from the same rules.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daozhang.errors import InputError
from daozhang.settle.source import Source

READERS = ("generic", "table", "fixed")
# The row keys a table or fixed profile may fill (settle/rows.py names them; ord/xid: DESIGN
# §2.3).
TABLE_KEYS = (
    "txn_time",
    "mid",
    "tid",
    "xid",
    "ord",
    "typ",
    "amt",
    "fee",
    "settle_amt",
    "rrn",
    "bat",
    "trc",
    "pan",
    "ck",
    # What daozhang's own fixed-width file carries (a real file's rows derive them).
    "ch",
    "orrn",
    "direction",
    "settle_type",
    "check_flag",
    "payout_id",
)
_FIELD_OPTIONS = {
    "column",
    "time",
    "yuan",
    "fen",
    "dc",
    "map",
    "by_type",
    "absolute",
    "negate",
    "optional",
    "mask_card",
    "signed",
    "pattern",
}
_BUILTIN = Path(__file__).with_name("profiles.toml")


@dataclass(frozen=True)
class FieldSpec:
    key: str
    column: str | tuple[str, ...]  # several columns: their cells joined with a space
    time: str | None = None  # strptime format, Beijing time; without %Y: the file's year
    yuan: bool = False  # an amount in yuan (any number of decimals, rounded half up to fen)
    mapping: dict[str, str] = field(default_factory=dict)
    by_type: dict[str, str] = field(default_factory=dict)  # another column for a mapped typ
    absolute: bool = False  # refunds written negative: the sign is the type's, not the amount's
    negate: bool = False  # a fee written negative when charged
    optional: bool = False  # the column may be missing or empty
    fen: bool = False  # digits in fen (fixed-width files)
    dc: str = ""  # a sign letter then digits in fen: "D" or "C", the letter that means plus
    mask_card: bool = False  # a card number, full or masked: kept as first 6 + last 4 only
    signed: bool = False  # a sign (+ or -) then digits in fen
    pattern: str = ""  # a regular expression the whole value must match (ASCII)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.column if isinstance(self.column, tuple) else (self.column,)


@dataclass(frozen=True)
class Record:
    """A fixed-width file's header or trailer record: the text it starts with (its record
    type), its fields' widths, and which fields say what. A header gives the file's date and
    acquirer; a trailer the count of detail records and the total of their amounts (fen),
    both checked against the rows."""

    record: str
    layout: tuple[tuple[str, int], ...]
    date: str = ""  # header: the field with the file's date, read with date_format
    date_format: str = ""
    acquirer: str = ""  # header: the field naming the acquirer
    count: str = ""  # trailer: the field with the number of detail records
    total: str = ""  # trailer: the field with the sum of their amounts, in fen


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    reader: str
    encodings: tuple[str, ...]
    origin: str  # "built-in" or the user file
    detect_header: tuple[str, ...] = ()
    detect_starts_with: str = ""
    kind: str = "detail"
    strip: str = ""
    comment: str = ""
    header_starts: str = ""
    end_starts: str = ""
    defaults: dict[str, str] = field(default_factory=dict)
    settle_date: str = ""  # "txn_time", "file" (the name's date) or "column"
    settle_date_column: str = ""  # with "column": which, and its strptime format
    settle_date_format: str = ""
    comment_fields: dict[str, str] = field(default_factory=dict)
    fields: tuple[FieldSpec, ...] = ()  # `typ` first: another field's `by_type` reads it
    # Fixed width (reader "fixed"): the record's fields in order, (name, width in bytes),
    # each followed by `separator`; the file's date read from its name (regex with one group,
    # strptime format); recognised by its name and record length.
    layout: tuple[tuple[str, int], ...] = ()
    separator: str = ""
    name_date: str = ""
    name_date_format: str = ""
    detect_name: str = ""
    drop: tuple[str, ...] = ()  # columns never read (cardholder name, ID number)
    # Fixed width with record types: detail records start with `record`; the header and
    # trailer, when the layout has them, are described apart. `exact`: a record is the
    # layout's bytes, trailing padding included (daozhang's own file always pads).
    record: str = ""
    header: Record | None = None
    trailer: Record | None = None
    exact: bool = False

    @property
    def record_bytes(self) -> int:
        sep = len(self.separator.encode())
        return sum(w for _, w in self.layout) + sep * max(len(self.layout) - 1, 0)

    @property
    def least_record_bytes(self) -> int:
        """A record's trailing padding may be trimmed, never a value: it reaches at least the
        first byte of the last field the profile must read (ACOMA's fee: 392 bytes)."""
        needed = {c for s in self.fields if not s.optional for c in s.columns}
        sep = len(self.separator.encode())
        pos = least = 0
        for name, width in self.layout:
            if name in needed:
                least = pos + 1
            pos += width + sep
        return least


def load(path: Path | None = None) -> dict[str, Profile]:
    """The built-in profiles, then those of `path` (a user file may not reuse a name)."""
    profiles = _load_file(_BUILTIN, "built-in")
    if path is not None:
        for name, profile in _load_file(path, str(path)).items():
            if name in profiles:
                raise InputError(f"{path}: profile {name!r}: a built-in profile has that name")
            profiles[name] = profile
    return profiles


def _load_file(path: Path, origin: str) -> dict[str, Profile]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a TOML file: {exc}") from None
    return {name: _profile(path, name, table, origin) for name, table in data.items()}


def _profile(path: Path, name: str, t: Any, origin: str) -> Profile:
    def bad(what: str) -> InputError:
        return InputError(f"{path}: profile {name!r}: {what}")

    if not isinstance(t, dict):
        raise bad("expected a table")
    reader = t.get("reader", "table")
    if reader not in READERS:
        raise bad(f"reader {reader!r}: expected one of {', '.join(READERS)}")
    encodings = tuple(t.get("encodings", ("utf-8", "gbk")))
    if not encodings or any(e not in ("utf-8", "gbk") for e in encodings):
        raise bad("encodings: expected a list of utf-8 and gbk")
    detect = t.get("detect", {})
    specs: list[FieldSpec] = []
    for key, spec in t.get("fields", {}).items():
        if key not in TABLE_KEYS:
            raise bad(f"field {key!r}: expected one of {', '.join(TABLE_KEYS)}")
        if not isinstance(spec, dict) or "column" not in spec:
            raise bad(f"field {key!r}: expected a table with a column")
        unknown = set(spec) - _FIELD_OPTIONS
        if unknown:
            raise bad(f"field {key!r}: unknown option {sorted(unknown)[0]!r}")
        column = spec["column"]
        if spec.get("dc", "") not in ("", "C", "D"):
            raise bad(f'field {key!r}: dc: expected "C" or "D" (the letter meaning plus)')
        specs.append(
            FieldSpec(
                key,
                tuple(str(c) for c in column) if isinstance(column, list) else str(column),
                spec.get("time"),
                bool(spec.get("yuan", False)),
                dict(spec.get("map", {})),
                dict(spec.get("by_type", {})),
                bool(spec.get("absolute", False)),
                bool(spec.get("negate", False)),
                bool(spec.get("optional", False)),
                bool(spec.get("fen", False)),
                str(spec.get("dc", "")),
                bool(spec.get("mask_card", False)),
                bool(spec.get("signed", False)),
                str(spec.get("pattern", "")),
            )
        )
        if specs[-1].pattern:
            try:
                re.compile(specs[-1].pattern)
            except re.error as exc:
                raise bad(f"field {key!r}: pattern: {exc}") from None
    layout = tuple((str(n), int(w)) for n, w in t.get("layout", ()))
    sd = t.get("settle_date", "")
    if isinstance(sd, dict) and "column" not in sd:
        raise bad('settle_date: expected "txn_time", "file" or { column = ..., format = ... }')
    names = {n for n, _ in layout}
    if reader == "fixed":
        if not layout or any(w <= 0 for _, w in layout):
            raise bad("layout: list the record's fields in order, [name, width in bytes]")
        for spec in specs:
            for column in spec.columns:
                if column not in names:
                    raise bad(f"field {spec.key!r}: column {column!r} is not in the layout")
    if reader in ("table", "fixed"):
        if not all(s.mask_card for s in specs if s.key == "pan"):
            raise bad("field 'pan': a card number is kept masked: set mask_card = true")
        dropped = set(t.get("drop", ()))
        for spec in specs:
            if dropped & set(spec.columns):
                raise bad(f"field {spec.key!r}: its column is dropped (personal data)")
        missing = (
            {"txn_time", "mid", "amt"} - {s.key for s in specs} - set(t.get("comment_fields", {}))
        )
        if missing:
            raise bad(f"fields: {', '.join(sorted(missing))} missing")
        if not detect.get("header") and not detect.get("name") and reader == "table":
            raise bad("detect.header: list the columns that identify the file")
        if reader == "fixed" and not detect.get("name") and not detect.get("starts_with"):
            raise bad(
                "detect.name: a regular expression the file's name matches"
                " (or detect.starts_with: the text its first line starts with)"
            )
    header = _record(bad, t.get("header"), "header", ("date", "acquirer"))
    trailer = _record(bad, t.get("trailer"), "trailer", ("count", "total"))
    if (header or trailer) and not t.get("record"):
        raise bad("record: the text a detail record starts with (beside a header or trailer)")
    return Profile(
        name=name,
        description=str(t.get("description", "")),
        reader=reader,
        encodings=encodings,
        origin=origin,
        detect_header=tuple(detect.get("header", ())),
        detect_starts_with=str(detect.get("starts_with", "")),
        kind=str(t.get("kind", "detail")),
        strip=str(t.get("strip", "")),
        comment=str(t.get("comment", "")),
        header_starts=str(t.get("header_starts", "")),
        end_starts=str(t.get("end_starts", "")),
        defaults={str(k): str(v) for k, v in t.get("defaults", {}).items()},
        settle_date="column" if isinstance(sd, dict) else str(sd),
        settle_date_column=str(sd.get("column", "")) if isinstance(sd, dict) else "",
        settle_date_format=str(sd.get("format", "%Y-%m-%d")) if isinstance(sd, dict) else "",
        comment_fields={str(k): str(v) for k, v in t.get("comment_fields", {}).items()},
        fields=tuple(sorted(specs, key=lambda s: s.key != "typ")),  # typ first
        layout=layout,
        separator=str(t.get("separator", "")),
        name_date=str(t.get("name_date", {}).get("regex", "")),
        name_date_format=str(t.get("name_date", {}).get("format", "")),
        detect_name=str(detect.get("name", "")),
        drop=tuple(str(c) for c in t.get("drop", ())),
        record=str(t.get("record", "")),
        header=header,
        trailer=trailer,
        exact=bool(t.get("exact", False)),
    )


def _record(bad: Any, t: Any, what: str, says: tuple[str, str]) -> Record | None:
    """A `[NAME.header]` or `[NAME.trailer]` table, checked."""
    if t is None:
        return None
    if not isinstance(t, dict) or not t.get("record") or not t.get("layout"):
        raise bad(f"{what}: expected a table with record (its first text) and layout")
    layout = tuple((str(n), int(w)) for n, w in t["layout"])
    names = {n for n, _ in layout}
    date = t.get("date", {})
    fields = {
        "date": str(date.get("column", "")) if isinstance(date, dict) else "",
        "acquirer": str(t.get("acquirer", "")),
        "count": str(t.get("count", "")),
        "total": str(t.get("total", "")),
    }
    for key in says:
        if fields[key] and fields[key] not in names:
            raise bad(f"{what}.{key}: {fields[key]!r} is not in its layout")
    unknown = set(t) - {"record", "layout", *says}
    if unknown:
        raise bad(f"{what}: unknown option {sorted(unknown)[0]!r}")
    return Record(
        str(t["record"]),
        layout,
        fields["date"],
        str(date.get("format", "%Y%m%d")) if isinstance(date, dict) else "",
        fields["acquirer"],
        fields["count"],
        fields["total"],
    )


def _head_lines(source: Source) -> list[str]:
    text = source.head.decode(source.text_encoding(), errors="ignore")
    return text.splitlines()[:60]


def _misfit(profile: Profile, source: Source, lines: list[str]) -> str | None:
    """None when the file fits the profile, else why not (for "closest: ...")."""
    if not set(source.decodes or (source.encoding,)) & set(profile.encodings):
        return f"the file is {source.encoding}, the profile reads {', '.join(profile.encodings)}"
    if profile.reader == "fixed":
        return _fixed_misfit(profile, source)
    if profile.detect_starts_with:
        if not lines or not lines[0].startswith(profile.detect_starts_with):
            return f"does not start with {profile.detect_starts_with!r}"
        return None
    if not lines:
        return "the file is empty (no header)"  # which no header-recognised layout fits
    best: list[str] | None = None
    for line in lines:
        cells = {c.strip(profile.strip + " \t\ufeff") for c in line.split(",")}
        missing = [c for c in profile.detect_header if c not in cells]
        if best is None or len(missing) < len(best):
            best = missing
    if best:
        return f"no header with {', '.join(best)}"
    return None


def _fixed_misfit(profile: Profile, source: Source) -> str | None:
    base = Path(source.name).name
    if profile.detect_name and not re.search(profile.detect_name, base):
        return f"the name is not like {profile.detect_name}"
    first = source.head.split(b"\n", 1)[0].rstrip(b"\r")
    if profile.detect_starts_with:
        if not first.startswith(profile.detect_starts_with.encode()):
            return f"does not start with {profile.detect_starts_with!r}"
        return None  # a header record: the detail records' widths are checked as read
    # An empty file (a day without sales) fits; a record reaches into the last field read.
    fits = not first or profile.least_record_bytes <= len(first) <= profile.record_bytes
    if not fits or b"," in first[:40]:
        return f"line 1 is {len(first)} bytes, a record {profile.record_bytes}"
    return None


def pick(source: Source, profiles: dict[str, Profile], name: str | None) -> Profile:
    """The profile named, or the one the file fits; InputError naming the closest ones."""
    if name is not None:
        if name not in profiles:
            raise InputError(
                f"{source.name}: no profile {name!r}: known: {', '.join(sorted(profiles))}"
            )
        return profiles[name]
    lines = _head_lines(source)
    why: dict[str, str] = {}
    fits = []
    for profile in profiles.values():
        problem = _misfit(profile, source, lines)
        if problem is None:
            fits.append(profile)
        else:
            why[profile.name] = problem
    # The project's generic CSV fits many files that name a merchant_id; a specific layout
    # that fits wins over it.
    specific = [p for p in fits if p.name != "generic"]
    if specific:
        return specific[0]
    if fits:
        return fits[0]
    ranked = sorted(why, key=lambda n: _distance(why[n], profiles[n]))[:3]
    closest = "; ".join(f"{n}: {why[n]}" for n in ranked)
    raise InputError(
        f"{source.name}: line 1: no profile recognises this file (closest: {closest}); "
        "name one with --profile, or describe the layout in a profile file (--profiles)"
    )


def _distance(why: str, profile: Profile) -> float:
    """How far a file was from a profile: the share of its header columns missing."""
    if why.startswith("line 1 is"):
        return 0.0  # a fixed layout whose file name matched: the user's file, other records
    if why.startswith("the file is empty"):
        return 0.5  # said first: it is why nothing fits
    m = re.match(r"no header with (.*)", why)
    if m and profile.detect_header:
        return len(m[1].split(", ")) / len(profile.detect_header)
    return 1.0 if why.startswith("does not start") else 2.0
