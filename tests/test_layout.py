"""The house rules that imports can show: the core never reaches into the shapes world except
through the plug-in registries, reward_models stands alone, and algos/ is pure maths."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, REWARDS = ROOT / "t2i_gcpo", ROOT / "reward_models"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions ("a.b" for from a.b import c,
    and "a.b.c" too, since c may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def files(folder: Path, exclude: Path | None = None) -> list[Path]:
    return [p for p in sorted(folder.rglob("*.py")) if exclude is None or exclude not in p.parents]


CORE = files(PACKAGE, exclude=PACKAGE / "toy")


def test_the_walk_sees_the_files_and_their_imports():
    assert len(CORE) > 20 and PACKAGE / "trainer.py" in CORE
    assert "t2i_gcpo.toy.assets" in imported_modules(PACKAGE / "toy" / "rewards.py")


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_does_not_import_the_shapes_world(path):
    toy = sorted(m for m in imported_modules(path) if m.split(".")[:2] == ["t2i_gcpo", "toy"])
    assert toy == [], f"{path.name} imports {toy}; register through a plug-in entry point"


@pytest.mark.parametrize("path", files(REWARDS), ids=lambda p: str(p.relative_to(ROOT)))
def test_reward_models_imports_nothing_from_t2i_gcpo(path):
    assert not [m for m in imported_modules(path) if m.split(".")[0] == "t2i_gcpo"]


@pytest.mark.parametrize("path", files(PACKAGE / "algos"), ids=lambda p: p.name)
def test_algos_is_pure_tensor_maths(path):
    allowed = {"__future__", "math", "dataclasses", "typing", "collections", "torch"}
    outside = [
        m
        for m in imported_modules(path)
        if m.split(".")[0] not in allowed and not m.startswith("t2i_gcpo.algos")
    ]
    assert outside == [] and "torch.nn" not in imported_modules(path)


def test_the_trainer_does_not_import_a_commands_module():
    imported = imported_modules(PACKAGE / "trainer.py")
    assert "t2i_gcpo.cli" not in imported and "t2i_gcpo.viz.heatmap" not in imported
