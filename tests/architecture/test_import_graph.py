"""A stage imports only stages upstream of it (docs/architecture.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "immunodig"

#: Layers from upstream to downstream; a module may import its own unit and earlier layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "vocab", "__version__"),
    ("config", "provenance", "io", "progress"),
    ("slide_folder",),
    ("slides", "synthetic", "compute"),
    ("tissue", "nuclei", "embeddings", "structures"),
    ("features",),
    ("store",),
    ("clinical",),
    ("models",),
    ("evaluation", "mil"),
    ("report",),
    ("pipeline",),
    ("demo",),
    ("cli",),
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if len(rel.parts) > 1 else ("__version__" if rel.name == "__init__" else rel.name)


def _imports(path: Path) -> set[str]:
    units = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "immunodig":
                units |= {a.name for a in node.names}
            elif node.module.startswith("immunodig."):
                units.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            units |= {a.name.split(".")[1] for a in node.names if a.name.startswith("immunodig.")}
    return units


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in PACKAGE.rglob("*.py")} - {"__main__"}
    assert units <= set(LAYER_OF), sorted(units - set(LAYER_OF))


def test_no_stage_imports_a_downstream_stage():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _unit(path)
        for dst in _imports(path) - {src}:
            if LAYER_OF.get(dst, -1) > LAYER_OF[src]:
                violations.append(f"{path.relative_to(PACKAGE)} ({src}) imports {dst}")
    assert not violations, "\n".join(violations)
