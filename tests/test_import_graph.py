"""tools/import_graph.py: the layer rule on a table, then on the repository (no import cycles, the
core imports neither Ray, torch, MLflow, model/ nor benchmarks/), and importing the core for real."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)


def test_layer_rule_names_each_forbidden_import_of_the_core():
    graph = {
        "tuner.core.a": {"tuner.core.b", "tuner.contract", "tuner.training.settings", "tuner.raytune.x"},
        "tuner.core.b": {"model.data"},
        "tuner.raytune.x": {"tuner.core.a"},          # other rooms may import the core
    }
    outside = {"tuner.core.a": {"yaml", "optuna", "ray"}, "tuner.core.b": {"torch"}, "tuner.raytune.x": {"ray"}}
    broken = import_graph.layer_violations(graph, outside)
    assert [line.split(" (")[0] for line in broken] == [
        "tuner.core.a imports tuner.raytune.x",
        "tuner.core.a imports ray",
        "tuner.core.b imports model.data",
        "tuner.core.b imports torch",
    ]


def test_cycles_finds_a_two_module_loop_only():
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert import_graph.cycles(graph) == [["a", "b"]]


def test_repository_has_no_import_cycle_and_its_core_keeps_its_layer():
    mods = import_graph.modules()
    assert any(name.startswith("tuner.core.") for name in mods)
    graph = import_graph.edges(mods)
    assert import_graph.cycles(graph) == []
    assert import_graph.layer_violations(graph, import_graph.third_party(mods)) == []


def test_importing_every_core_module_loads_no_ray_torch_mlflow_model_or_benchmarks():
    code = (
        "import pkgutil, sys, importlib, tuner.core\n"
        "names = [m.name for m in pkgutil.walk_packages(tuner.core.__path__, 'tuner.core.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch', 'mlflow', 'model', 'benchmarks'))\n"
        "print(len(names), bad[:5])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert int(out[0]) >= 10 and out[1:] == ["[]"]
