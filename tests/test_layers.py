"""The package's folders are its layers: a module imports only its own layer and the ones below it,
at the top of the file or inside a function alike, and no modules import each other in a circle."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fracture_detection"
# lowest first; cli.py (the command-line plumbing of the top-level scripts) sits above them all
LAYERS = ["io", "models", "chain", "evaluation", "training", "app", "cli"]
# above every layer: the package itself (__version__, and analyse(), which imports the chain when called)
# and `python -m fracture_detection`; no layer imports them back (the circle test below)
ENTRY = {"fracture_detection", "fracture_detection.__main__"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Every fracture_detection module this file (or ``source`` read as if it stood there) imports,
    wherever the import statement stands."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fracture_detection")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("fracture_detection"):
                continue
            for alias in node.names:  # `from . import x` names a module; `from .m import f` names a thing in m
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").is_file()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "package"


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_sits_in_a_layer_folder():
    loose = [m for m in graph() if layer(m) not in LAYERS and m not in ENTRY]
    assert not loose, f"modules outside the layer folders: {loose}"
    assert all((PACKAGE / name / "__init__.py").read_text().startswith('"""') for name in LAYERS[:-1])


def test_no_module_imports_a_higher_layer():
    upward = [line for m, targets in graph().items() for line in upward_imports(m, targets)]
    assert not upward, "a lower layer imports a higher one:\n" + "\n".join(upward)


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(g.get(node, ())):
            if nxt == node or nxt not in g:
                continue
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in g:
        if start not in state:
            visit(start, [start])


def upward_imports(module: str, targets) -> list[str]:
    """A layer's imports of a higher layer, and the package's entry modules imported by any layer
    below the command line (the package's ``analyse`` sits above the chain it calls)."""
    return [f"{module} -> {t}" for t in targets
            if layer(module) in LAYERS and (
                (layer(t) in LAYERS and LAYERS.index(layer(t)) > LAYERS.index(layer(module)))
                or (t in ENTRY and layer(module) != "cli"))]


def test_the_checker_sees_a_lazy_upward_import():
    """The rules above would pass vacuously if imports went unseen: a function-level import of a
    higher layer, relative or absolute, in a lower module has to be found and flagged."""
    here = PACKAGE / "io" / "images.py"
    lazy = ("def f():\n    from ..chain import decisions\n"
            "    if True:\n        from fracture_detection.models.artifacts import WeightsError\n")
    assert upward_imports("fracture_detection.chain.decisions", {"fracture_detection"}), "the package's analyse()"
    found = imports_of(here, lazy)
    assert found == {"fracture_detection.chain.decisions", "fracture_detection.models.artifacts"}
    assert len(upward_imports("fracture_detection.io.images", found)) == 2
    assert {"fracture_detection.chain.decisions", "fracture_detection.models.runtime"} <= \
        imports_of(PACKAGE / "chain" / "predictor.py")
