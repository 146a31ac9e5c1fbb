"""The host package's imports run one way: down the layers, never from the product into the lab.

`./run check` runs this. It reads every module of `host_tools/daozhang` (imports inside
functions and under TYPE_CHECKING included) and fails, naming the file and line, on:
- an import from a lower layer up into a higher one;
- an import between two packages of the same layer (they are independent of each other);
- an import of the test lab (`daozhang.lab`) from anywhere in the product.
The lab sits above the whole product and may import any of it. A package may import itself.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = "daozhang"  # the package's own __init__ (its version): only itself, not a prefix
PACKAGE = REPO / "host_tools" / "daozhang"

# Top to bottom. Each entry is one layer: the packages (or modules) in it, independent of
# each other. A module belongs to the longest prefix listed.
LAYERS: list[list[str]] = [
    ["daozhang.lab"],  # the test lab: simulators, virtual boards, fault proxy, the demo
    ["daozhang.cli"],  # the one command table
    ["daozhang.commands"],  # one module per command
    ["daozhang.schema"],  # the product's list of table owners, handed to the store
    ["daozhang.console"],  # the fleet console (web); handed its store by its command
    ["daozhang.report", "daozhang.alerts"],  # findings rendered; alerts from rules
    ["daozhang.ota"],  # update bundles and rollouts: uses flash's build
    ["daozhang.correlate", "daozhang.fleet", "daozhang.flash"],
    ["daozhang.remote"],  # signed commands to devices; used by flash and the commands
    ["daozhang.collector", "daozhang.settle", "daozhang.broker"],
    ["daozhang.security"],
    ["daozhang.store"],
    [
        "daozhang.units",
        "daozhang.contract",
        "daozhang.radio",
        "daozhang.words",
        "daozhang.paths",
        "daozhang.ports",
    ],
    ["daozhang.errors", ROOT],
]
LAB = "daozhang.lab"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    importer = module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from daozhang.x import y` may name a module y: count the deepest one.
            names = [
                node.module if node.module == ROOT else f"{node.module}.{alias.name}"
                for alias in node.names
            ]
        else:
            continue
        found += [
            Import(importer, name, path, node.lineno)
            for name in names
            if name == "daozhang" or name.startswith("daozhang.")
        ]
    return found


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the listed package) for a module; 0 is the top."""
    best: tuple[int, str] | None = None
    for index, members in enumerate(LAYERS):
        for member in members:
            matches = module == member or (member != ROOT and module.startswith(member + "."))
            if matches and (best is None or len(member) > len(best[1])):
                best = (index, member)
    if best is None:
        raise SystemExit(f"tools/import_layers.py: {module} is in no layer: add it to LAYERS")
    return best


def problem(imp: Import) -> str | None:
    (high, importer_pkg), (low, imported_pkg) = layer_of(imp.importer), layer_of(imp.imported)
    if importer_pkg == imported_pkg:
        return None
    if imported_pkg == LAB:
        return f"the product imports the test lab ({imp.imported})"
    if high > low:
        return f"imports up the layers: {importer_pkg} (below) imports {imp.imported} (above)"
    if high == low:
        return f"{importer_pkg} and {imported_pkg} are one layer and independent of each other"
    return None


def main() -> int:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for imp in imports_of(path):
            reason = problem(imp)
            if reason is not None:
                where = imp.path.relative_to(REPO)
                problems.append(f"{where}:{imp.line}: {reason}")
    for line in problems:
        print(line)
    print(f"import layers: {len(problems)} problem(s)" if problems else "import layers: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
