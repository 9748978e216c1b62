"""The package's shape: no import cycles, small modules, and layers that only import downwards.

The import graph is read from the source (no module is imported): every ``import`` and
``from ... import`` statement, including those inside functions, except the bodies of
``if TYPE_CHECKING:`` (never executed). Relative imports are resolved; ``from pkg import name``
points at ``pkg.name`` when that is a module, else at ``pkg``. Importing ``a.b.c`` also runs the
``__init__`` of ``a`` and ``a.b``, so those are edges too -- except a module's own parent packages,
which Python has always started importing before the module itself runs.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import pix2pix_lib

PACKAGE = "pix2pix_lib"
ROOT = Path(pix2pix_lib.__file__).resolve().parent
#: A smell threshold, not a target: modules are kept small by giving each one job, never by cutting a class
#: into files (see test_no_class_is_spread_over_several_files); a module over this needs a second look.
MAX_LINES = 700


# --- reading the graph --------------------------------------------------------------------------------
@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (packages by their __init__)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST, type_hints: bool = False) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth; ``if TYPE_CHECKING:`` bodies are skipped (not their
    ``else``) unless ``type_hints``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if not type_hints and isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def _known(name: str) -> str | None:
    """``name`` or its nearest enclosing module of the package; None outside the package."""
    table = modules()
    while name:
        if name in table:
            return name
        name = name.rpartition(".")[0]
    return None


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_names(module: str, type_hints: bool = False) -> set[str]:
    """Dotted names ``module``'s import statements name (resolved, inside the package or not); with
    ``type_hints`` also those under ``if TYPE_CHECKING:``."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path)), type_hints):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            parts = package.split(".")
            if node.level - 1 >= len(parts):
                raise AssertionError(f"{path}:{node.lineno}: relative import beyond the top-level package")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            target = f"{base}.{node.module}" if node.module else base
        else:
            target = node.module or ""
        for alias in node.names:
            candidate = f"{target}.{alias.name}"
            names.add(candidate if candidate in modules() else target)
    return names


@cache
def graph(type_hints: bool = False) -> dict[str, frozenset[str]]:
    """Module -> the package modules importing it runs (explicit targets plus their parent packages); with
    ``type_hints`` also the imports only type checkers follow."""
    edges = {}
    for module in modules():
        own_parents = set(_ancestors(module))
        targets: set[str] = set()
        for name in imported_names(module, type_hints):
            known = _known(name)
            if known is None:
                continue
            targets.add(known)
            targets.update(parent for parent in _ancestors(known) if parent not in own_parents)
        targets -= own_parents | {module}
        edges[module] = frozenset(targets)
    return edges


def direct_package_imports(module: str) -> set[str]:
    """The package modules named by ``module``'s own import statements (no implied parents)."""
    return {known for name in imported_names(module) if (known := _known(name)) is not None and known != module}


def reachable(module: str) -> set[str]:
    seen: set[str] = set()
    pending = [module]
    while pending:
        for target in graph()[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    seen.discard(module)
    return seen


def find_cycle(type_hints: bool = False) -> list[str] | None:
    edges = graph(type_hints)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


# --- the reader itself ----------------------------------------------------------------------------------
def test_reader_finds_function_level_imports_and_skips_type_checking() -> None:
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hidden\nelse:\n    import shown_else\n"
        "def f():\n    import inside_function\n"
        "class C:\n    def m(self):\n        from deep import thing\n"
    )
    names = {alias.name for node in import_nodes(tree) for alias in node.names}
    assert {"os", "TYPE_CHECKING", "shown_else", "inside_function", "thing"} <= names
    assert "hidden" not in names


def test_graph_resolves_relative_imports() -> None:
    # loader.py: `from ..models.registry import load_model_folder` and `from .legacy import legacy_model`
    edges = graph()["pix2pix_lib.pretrained.loader"]
    assert {"pix2pix_lib.models.registry", "pix2pix_lib.models", "pix2pix_lib.pretrained.legacy"} <= edges
    # function-level: `from .._version import __version__` inside PretrainedMixin.hub_config
    assert "pix2pix_lib._version" in imported_names("pix2pix_lib.models.hub_mixin")
    assert len(modules()) > 30


# --- the rules ------------------------------------------------------------------------------------------
def test_no_import_cycles() -> None:
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycles_even_through_type_hints() -> None:
    cycle = find_cycle(type_hints=True)
    assert cycle is None, "import cycle through type hints (often one class spread over several files): " + " -> ".join(cycle or [])


def test_nothing_below_the_root_imports_the_root() -> None:
    """The version lives in the leaf ``_version``: a submodule importing ``pix2pix_lib`` itself would run the root."""
    offenders = [module for module in modules() if module != PACKAGE and PACKAGE in graph(type_hints=True)[module]
                 and PACKAGE in direct_package_imports(module)]
    assert offenders == []


def _classes_by_name() -> dict[str, str]:
    found: dict[str, str] = {}
    for module, path in modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, module)
    return found


def test_no_class_is_spread_over_several_files() -> None:
    """A method typed ``self: SomeClass`` outside SomeClass's module is one class in disguise."""
    classes = _classes_by_name()
    spread = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.args.args:
                annotation = node.args.args[0].annotation
                name = annotation.id if isinstance(annotation, ast.Name) else getattr(annotation, "value", None)
                if node.args.args[0].arg == "self" and isinstance(name, str) and classes.get(name) not in (None, module):
                    spread.append(f"{module}.{node.name} (self: {name}, defined in {classes[name]})")
    assert spread == []


def test_public_root_names_are_the_promise() -> None:
    import pix2pix_lib

    for name in ("CycleGANTrainer", "UnpairedImageDataset", "HugGANGenerator", "list_models", "Engine", "GANRecipe"):
        assert name in pix2pix_lib.__all__ and getattr(pix2pix_lib, name) is not None


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_over_400_lines(module: str) -> None:
    path = modules()[module]
    count = len(path.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_LINES, f"{path} has {count} lines (limit {MAX_LINES})"


def test_benchmark_left_the_package() -> None:
    assert not (ROOT / "benchmark.py").exists()
    assert "pix2pix_lib.benchmark" not in modules()


#: layer -> packages it must not import, directly or through anything it imports
LAYERS = {
    "models": ("data", "training", "inference", "evaluation", "cli", "pretrained"),
    "data": ("training", "inference", "evaluation", "cli"),
    "training": ("inference", "evaluation", "cli"),
    "inference": ("training", "evaluation", "cli"),
}


def _in(module: str, package: str) -> bool:
    name = f"{PACKAGE}.{package}"
    return module == name or module.startswith(name + ".")


def _violations(layer: str, forbidden: tuple[str, ...], via) -> list[str]:
    found = []
    for module in sorted(modules()):
        if _in(module, layer):
            found += [f"{module} -> {t}" for t in sorted(via(module)) if any(_in(t, f) for f in forbidden)]
    return found


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_only_downwards(layer: str) -> None:
    forbidden = LAYERS[layer]
    direct = _violations(layer, forbidden, direct_package_imports)
    assert direct == [], f"{layer} imports from {', '.join(forbidden)}:\n" + "\n".join(direct)
    indirect = _violations(layer, forbidden, reachable)
    assert indirect == [], f"{layer} reaches {', '.join(forbidden)} through its imports:\n" + "\n".join(indirect)


CORE = ("atomic_io", "devices", "norm_modes", "pixels")
LEAVES = ("norm_modes", "pixels")


@pytest.mark.parametrize("name", CORE)
def test_core_modules_import_only_each_other(name: str) -> None:
    module = f"{PACKAGE}.{name}"
    assert module in modules()
    allowed = set() if name in LEAVES else {f"{PACKAGE}.{other}" for other in CORE if other != name}
    imported = direct_package_imports(module)
    assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"
    assert reachable(module) <= allowed, f"{module} reaches {sorted(reachable(module) - allowed)}"


def test_no_test_module_imports_another() -> None:
    """Shared test helpers live in helper modules (helpers.py, fake_hub.py, ...) and conftest.py fixtures."""
    tests = Path(__file__).resolve().parent
    offenders = []
    for path in sorted(tests.glob("test_*.py")):
        for node in import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [module or ""] if module else [alias.name for alias in node.names]
            if any(name.split(".")[-1].startswith("test_") for name in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
