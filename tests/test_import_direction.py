"""Imports flow one way (ARCHITECTURE.md, "Layout"): each part of lead_hsr imports only the parts below it. Read from
the code's own import statements (function-level imports included), so a new module lands on the right floor."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lead_hsr"

# part -> the parts it may import (a part is a subpackage or a top-level module of lead_hsr)
BASE = {"errors", "hashing", "atomic"}
ALLOWED = {
    "errors": set(), "hashing": set(), "atomic": {"errors"},
    "weights": BASE, "train": BASE, "report": BASE,
    "data": BASE | {"report"},
    "perceptual": BASE | {"weights"},
    "lead": BASE | {"data", "train", "weights", "report"},
    "gan": BASE | {"data", "train", "weights", "perceptual", "report"},
    "metrics": BASE | {"data", "train", "weights", "perceptual", "report", "lead", "gan"},
    "budget": BASE | {"data", "train", "weights", "perceptual", "report", "lead", "gan", "metrics"},
    "gpu_check": BASE | {"data", "train", "weights", "perceptual", "report", "lead", "gan", "metrics", "budget"},
    # job and DAG plumbing beside the layers: they never reach into the networks
    "jobs": BASE, "config": BASE | {"data"}, "dag": BASE, "runs": BASE | {"dag", "report"},
}


def _part(module: str) -> str:
    return module.split(".")[1]


def _imported_parts(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("lead_hsr"):
            if node.module == "lead_hsr":
                yield from ((alias.name, node.lineno) for alias in node.names)
            else:
                yield _part(node.module), node.lineno
        elif isinstance(node, ast.Import):
            yield from ((_part(a.name), node.lineno) for a in node.names if a.name.startswith("lead_hsr."))


def test_every_import_goes_down():
    wrong, unplaced = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        part = rel.parts[0].removesuffix(".py")
        if part == "__init__":
            continue
        if part not in ALLOWED:
            unplaced.add(part)
            continue
        for imported, line in _imported_parts(path):
            if imported != part and imported not in ALLOWED[part]:
                wrong.append(f"lead_hsr/{rel.as_posix()}:{line}: {part} imports {imported}")
    assert not unplaced, f"new parts of lead_hsr without a floor: add them to ALLOWED (and ARCHITECTURE.md): {unplaced}"
    assert not wrong, "imports that run back up (ARCHITECTURE.md, Layout):\n" + "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from lead_hsr.metrics.iod import Normaliser\n")
    assert list(_imported_parts(bad)) == [("metrics", 2)]
    assert "metrics" not in ALLOWED["lead"]
