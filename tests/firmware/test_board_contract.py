"""The board contract in its three places agree: the Protocol (boards/contract.py), the
defaults (firmware/dzcore/boardbase.py: BoardBase) and the table in firmware/README.md, which is
written from the first two (`python tests/firmware/test_board_contract.py` rewrites it)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

from daozhang.paths import BOARDS, FIRMWARE

CONTRACT = BOARDS / "contract.py"
BASE = FIRMWARE / "dzcore" / "boardbase.py"
README = FIRMWARE / "README.md"
BEGIN = "<!-- board contract: written from boards/contract.py and firmware/dzcore/boardbase.py -->"
END = "<!-- end of board contract -->"


def _class(path: Path, name: str) -> ast.ClassDef:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise AssertionError(f"no class {name} in {path}")


def _signature(func: ast.FunctionDef) -> str:
    args = [a.arg for a in func.args.args[1:]]  # without self
    is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in func.decorator_list)
    return func.name if is_property else f"{func.name}({', '.join(args)})"


def contract_members() -> list[tuple[str, str, str]]:
    """(member, signature, description) for each member of the Protocol, in its order."""
    members: list[tuple[str, str, str]] = []
    body = _class(CONTRACT, "BoardContract").body
    for index, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            doc = body[index + 1] if index + 1 < len(body) else None
            text = doc.value.value if isinstance(doc, ast.Expr) else ""
            assert isinstance(text, str) and text, f"{node.target.id}: no description"
            members.append((node.target.id, node.target.id, text))
        elif isinstance(node, ast.FunctionDef):
            text = ast.get_docstring(node) or ""
            assert text, f"{node.name}: no description"
            members.append((node.name, _signature(node), text))
    return members


def base_members() -> dict[str, str]:
    """Public members BoardBase defines (a value or a method) -> signature."""
    found: dict[str, str] = {}
    for node in _class(BASE, "BoardBase").body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found[node.name] = _signature(node)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    found[target.id] = target.id
    return found


def render() -> str:
    defaults = base_members()
    contract = contract_members()
    lines = [
        BEGIN,
        "| member | | what it gives the core |",
        "|---|---|---|",
    ]
    for member, signature, text in contract:
        where = "default" if member in defaults else "**board**"
        said = " ".join(text.removeprefix("Default.").split())
        lines.append(f"| `{signature}` | {where} | {said} |")
    named = {member for member, _, _ in contract}
    hooks = [f"`{sig}`" for member, sig in sorted(defaults.items()) if member not in named]
    lines += [
        "",
        "Hooks the defaults call, for a board to override where it has the hardware: "
        + ", ".join(hooks)
        + ".",
        END,
    ]
    return "\n".join(lines)


def _readme_section(text: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    assert start >= 0 and end > start, f"{README} has no board-contract section ({BEGIN})"
    return text[start : end + len(END)]


def test_the_readme_table_is_the_contract() -> None:
    expected = render()
    assert _readme_section(README.read_text()) == expected, (
        "firmware/README.md's board contract differs from boards/contract.py and "
        "firmware/dzcore/boardbase.py; run `python tests/firmware/test_board_contract.py` to "
        "rewrite it as:\n" + expected
    )


def test_the_protocol_says_default_exactly_where_boardbase_has_one() -> None:
    defaults = base_members()
    for member, signature, text in contract_members():
        said = text.startswith("Default.")
        assert said == (member in defaults), f"{member}: 'Default.' and BoardBase disagree"
        if member in defaults:
            assert defaults[member] == signature, f"{member}: BoardBase has {defaults[member]}"


def test_every_board_is_named_as_its_board_json() -> None:
    for board_json in sorted(BOARDS.glob("*/board.json")):
        spec = json.loads(board_json.read_text())
        board = _class(board_json.parent / "board.py", "Board")
        names = [
            node.value.value
            for node in board.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "name" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ]
        assert names == [spec["board"]], f"{board_json.parent.name}: Board.name is {names}"
        bases = [b.id for b in board.bases if isinstance(b, ast.Name)]
        assert bases == ["BoardBase"], f"{board_json.parent.name}: Board derives from {bases}"


if __name__ == "__main__":
    text = README.read_text()
    README.write_text(text.replace(_readme_section(text), render()))
    sys.exit(0)
