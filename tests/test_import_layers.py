"""The import check of `./run check` finds what it promises to find."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def layers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_layers", REPO / "tools/import_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("importer", "imported", "found"),
    [
        ("daozhang.store.migrate", "daozhang.collector.tables", "imports up the layers"),
        ("daozhang.collector.retention", "daozhang.fleet.status", "imports up the layers"),
        ("daozhang.flash.link", "daozhang.lab.board.manager", "the product imports the test lab"),
        ("daozhang.cli", "daozhang.lab.demo", "the product imports the test lab"),
        ("daozhang.settle.importer", "daozhang.collector.keys", "independent of each other"),
        ("daozhang.lab.fleet.runner", "daozhang.commands.collect", None),
        ("daozhang.commands.lookup", "daozhang.commands.correlate", None),
        ("daozhang.correlate.engine", "daozhang.settle.calendar", None),
        ("daozhang.flash.build", "daozhang", None),
    ],
)
def test_an_import_is_judged_by_its_layers(
    layers: ModuleType, importer: str, imported: str, found: str | None
) -> None:
    reason = layers.problem(layers.Import(importer, imported, Path("x.py"), 1))
    assert (reason is None) if found is None else (reason is not None and found in reason)


def test_a_module_outside_every_layer_is_refused(layers: ModuleType) -> None:
    with pytest.raises(SystemExit, match=r"daozhang\.newthing is in no layer"):
        layers.layer_of("daozhang.newthing")


def test_the_tree_keeps_its_layers(layers: ModuleType) -> None:
    assert layers.main() == 0


def test_each_package_says_what_it_owns_and_may_import(layers: ModuleType) -> None:
    product = layers.PACKAGE
    packages = [d for d in product.iterdir() if (d / "__init__.py").is_file()]
    missing = [
        d.name
        for d in packages
        if not (d / "README.md").is_file() or "## Imports" not in (d / "README.md").read_text()
    ]
    assert missing == []
    overview = (product / "README.md").read_text()
    listed = [member for layer in layers.LAYERS for member in layer if member != layers.ROOT]
    where = [overview.find(f"`{m.removeprefix('daozhang.').replace('.', '/')}") for m in listed]
    assert -1 not in where, "host_tools/daozhang/README.md names every layer's packages"
