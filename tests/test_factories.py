"""tests/factories.py: the quadratic run's metrics, and that the Supervisor's own tests run without
importing Ray, torch or MLflow (the factories they use do not import tests/e2e_helpers.py)."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from tests.factories import quadratic_metrics
from tuner.contract import CONTRACT_METRICS

ROOT = Path(__file__).resolve().parents[1]


def test_quadratic_metrics_are_the_contract_metrics_as_plain_floats():
    healthy, exploded, nan = quadratic_metrics(2, 0.5, False), quadratic_metrics(2, 0.5, True), \
        quadratic_metrics(2, 0.5, False, nan=True)
    assert set(healthy) <= set(CONTRACT_METRICS) and all(type(v) is float for v in healthy.values())
    assert healthy["training.loss"] == 0.2 + 4.0 * math.exp(-0.5)
    assert exploded["grad.norm"] == 500.0 and exploded["training.loss"] == healthy["training.loss"] + 0.5
    assert math.isnan(nan["training.loss"]) and math.isnan(nan["grad.norm"])


_PROBE = """
import sys, pytest
class Probe:
    def pytest_sessionfinish(self, session):
        print("LOADED", sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'torch', 'mlflow'}))
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[Probe()]))
"""


def test_the_supervisors_own_tests_run_without_ray_torch_or_mlflow():
    files = ["tests/test_supervisor.py", "tests/test_supervisor_state.py"]
    proc = subprocess.run([sys.executable, "-c", _PROBE, *files], cwd=ROOT, capture_output=True, text=True,
                          timeout=540)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "LOADED []" in proc.stdout and " passed" in proc.stdout
