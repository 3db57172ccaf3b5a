"""tuner/contract.py: the shared names and the two number formats, without torch or Ray."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from tuner.contract import (ACTION_KINDS, CONTRACT_METRICS, RECOVERY_ACTIONS, ActionKind, fmt, fmt_value,
                            numeric)


@pytest.mark.parametrize("result, expected", [
    ({"a": 1, "b": 2.5, "c": True, "d": "x", "e": {"f": 1.0}}, {"a": 1.0, "b": 2.5}),
    ({"nan": math.nan, "inf": math.inf}, {"nan": math.nan, "inf": math.inf}),
    ({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True)}, {"i": 3.0, "f": 0.5}),
    ({}, {}),
    # Ray's own keys, and subclasses of the types numeric() skips without checks
    ({"trial_id": "t1", "done": False, "ckpt": None, "config": {"lr": 1.0}, "l": [1.0], "t": (1.0,),
      "a": np.array(2.5), "s": type("S", (str,), {})("x"), "n": type("F", (float,), {})(1.5)},
     {"a": 2.5, "n": 1.5}),
])
def test_numeric_keeps_numbers_and_non_finite_values(result: dict, expected: dict) -> None:
    got = numeric(result)
    assert set(got) == set(expected) and all(type(v) is float for v in got.values())
    assert all(got[k] == v or (math.isnan(got[k]) and math.isnan(v)) for k, v in expected.items())


@pytest.mark.parametrize("x, expected", [(200.0, "200.0"), (312.44, "312.4"), (0.00036571, "0.0003657"),
                                         (math.nan, "nan"), (-math.inf, "-inf"), (2e6, "2e+06")])
def test_fmt_for_messages(x: float, expected: str) -> None:
    assert fmt(x) == expected


@pytest.mark.parametrize("value, expected", [(0.00123456, "0.001235"), (math.nan, "nan"), (16, "16"),
                                             ("tiny", "tiny"), (None, "None"), (200.0, "200")])
def test_fmt_value_for_tables(value: object, expected: str) -> None:
    assert fmt_value(value) == expected


def test_contract_imports_neither_torch_nor_ray() -> None:
    code = ("import sys, tuner.contract; bad = [m for m in ('torch', 'ray', 'mlflow', 'model') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    assert len(set(CONTRACT_METRICS)) == len(CONTRACT_METRICS) == 13


def test_one_action_kind_names_what_happens_to_a_trial() -> None:
    from typing import get_args, get_type_hints

    from benchmarks.drivers import Verdict
    from tuner.core.interventions import Intervention
    from tuner.core.policy import Decision
    from tuner.core.supervisor import Action

    for cls, name in ((Decision, "action"), (Action, "kind"), (Intervention, "action")):
        assert get_type_hints(cls)[name] == ActionKind, cls
    assert ActionKind in get_args(get_type_hints(Verdict)["action"])   # and the baselines' prune, ...
    assert set(RECOVERY_ACTIONS) < set(ACTION_KINDS) and len(set(ACTION_KINDS)) == len(ACTION_KINDS) == 6
