"""What a table printed for an 80-column terminal must look like."""

from __future__ import annotations


def whole_at_80(out: str) -> None:
    """Every table line fits and keeps its right border: no column cropped away."""
    for line in out.splitlines():
        assert len(line) <= 80, line
        if line[:1] in "┃│┡├└┏":
            assert line.rstrip()[-1] in "┃│┩┤┘┓", line
