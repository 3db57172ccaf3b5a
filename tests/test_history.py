"""tuner/core/history.py: the bounded window, the initial loss, the name map and missing metrics."""
from __future__ import annotations

import json
import math

import pytest

from tuner.core.config import config_from_dict, load_config
from tuner.core.history import History, MissingMetricError, _Ring


def result(step: int, loss: float = 1.0, **extra: float) -> dict:
    return {"training.loss": loss, "validation.loss": loss + 0.1, "validation.step": step, **extra}


@pytest.mark.parametrize("maxlen, n, expected_steps", [
    (3, 2, [1, 2]),
    (3, 3, [1, 2, 3]),
    (3, 5, [3, 4, 5]),
])
def test_window_is_bounded_oldest_first(maxlen: int, n: int, expected_steps: list[int]) -> None:
    h = History(maxlen)
    for s in range(1, n + 1):
        h.append(result(s))
    assert h.series("validation.step") == expected_steps
    assert len(h) == len(expected_steps)
    assert h.step == n
    assert h.total_reports == n


@pytest.mark.parametrize("losses, initial", [
    ([2.0, 1.5, 1.0, 0.5], 2.0),
    ([float("nan"), 3.0, 1.0, 0.5], 3.0),            # the first *finite* loss
    ([float("inf"), float("nan")], None),
])
def test_initial_training_loss_survives_the_window(losses: list[float], initial: float | None) -> None:
    h = History(2)
    for s, loss in enumerate(losses, 1):
        h.append(result(s, loss))
    assert h.initial_training_loss == initial


def test_values_are_plain_floats_and_non_finite_kept() -> None:
    h = History(5)
    h.append({"grad.norm": float("inf"), "validation.step": 1, "done": False, "trial_id": "abc",
              "config": {"lr": 1}})
    row = h[-1]
    assert row == {"grad.norm": math.inf, "validation.step": 1.0, "done": 0.0}
    assert all(type(v) is float for v in row.values())


@pytest.mark.parametrize("keep_initial, expected", [(True, 2.0), (False, None)])
def test_reset(keep_initial: bool, expected: float | None) -> None:
    h = History.from_results([result(1, 2.0), result(2, 1.0)])
    h.reset(keep_initial=keep_initial)
    assert len(h) == 0
    assert h.initial_training_loss == expected


def test_missing_metric_lists_what_was_reported() -> None:
    h = History.from_results([{"loss": 1.0, "acc": 0.5}], load_config())
    with pytest.raises(MissingMetricError) as info:
        h.latest("grad.norm")
    message = str(info.value)
    assert "'grad.norm'" in message and "acc, loss" in message and "metrics" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_monitor_window_keeps_only_the_metrics_the_rules_read() -> None:
    cfg = config_from_dict({"metrics": {"grad.norm": "gn"}})
    h = History.for_config(cfg)
    h.append({"gn": 1.0, "training.loss": 2.0, "validation.loss_mel": 3.0, "learning_rate": 1e-3,
              "validation.step": 1})
    assert h[-1] == {"gn": 1.0, "training.loss": 2.0, "validation.step": 1.0}
    with pytest.raises(MissingMetricError, match="gn, learning_rate, training.loss, validation.loss_mel"):
        h.latest("validation.loss")                   # the error still lists everything reported


def test_name_map_translates_contract_names() -> None:
    cfg = config_from_dict({"metrics": {"grad.norm": "gn", "validation.diagonality": None}})
    h = History.from_results([{"gn": 7.0, "validation.step": 1}], cfg)
    assert h.latest("grad.norm") == 7.0
    assert h.has("grad.norm") and not h.has("validation.loss")
    assert not h.enabled("validation.diagonality")
    with pytest.raises(MissingMetricError, match="reported as 'gn'"):
        History.from_results([{"grad.norm": 7.0}], cfg).latest("grad.norm")


@pytest.mark.parametrize("results, expected", [
    ([{"x": 1.0}, {"x": 2.0}], 2),                       # no validation.step: count of reports
    ([{"validation.step": 7.0}], 7),
    ([{"validation.step": float("nan")}], 1),
])
def test_step(results: list[dict], expected: int) -> None:
    assert History.from_results(results).step == expected


def test_optional_series_skips_results_without_the_metric() -> None:
    h = History.from_results([result(1, extra=1.0), result(2), result(3, extra=3.0)])
    assert h.optional_series("extra") == [1.0, 3.0]
    assert h.optional_series("absent") == []


def test_state_dict_round_trips_through_json() -> None:
    h = History(4)
    for s in range(1, 7):
        h.append(result(s, 10.0 - s, **{"grad.norm": float("nan") if s == 6 else 1.0}))
    restored = History(4)
    restored.load_state_dict(json.loads(json.dumps(h.state_dict())))
    assert restored.series("validation.step") == [3.0, 4.0, 5.0, 6.0]
    assert math.isnan(restored.latest("grad.norm"))
    assert (restored.initial_training_loss, restored.total_reports) == (9.0, 6)


def test_maxlen_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxlen must be >= 1, got 0"):
        History(0)


@pytest.mark.parametrize("cap", [1, 2, 3, 5])
def test_ring_tail_is_the_last_k_at_every_wrap_position(cap: int) -> None:
    """The tail is read as list slices: before, at and across the wrap of the buffer."""
    ring, pushed = _Ring(cap), []
    for item in range(3 * cap + 2):
        ring.append(item)
        pushed.append(item)
        kept = pushed[-cap:]
        for k in (None, 0, 1, 2, cap - 1, cap, cap + 3):
            assert ring.tail(k) == (kept if k is None else kept[len(kept) - min(k, len(kept)):])
        assert ring[-1] == item and ring[0] == kept[0]


def test_latest_and_step_follow_append_reset_and_load() -> None:
    """The latest result and its step are kept between appends; a reset or a state load
    changes them, and an empty window has none."""
    h = History(3)
    h.append({"training.loss": 2.0})                   # no validation.step: the count of reports
    assert (h.step, h.latest("training.loss"), h.has("training.loss")) == (1, 2.0, True)
    h.append(result(7, 1.5))
    assert (h.step, h.latest("training.loss")) == (7, 1.5)
    saved = json.loads(json.dumps(h.state_dict()))
    h.reset()
    assert (h.step, h.has("training.loss"), len(h)) == (2, False, 0)
    with pytest.raises(IndexError):
        h.latest("training.loss")
    h.load_state_dict(saved)
    assert (h.step, h.latest("training.loss"), h.has("training.loss")) == (7, 1.5, True)
    h.load_state_dict({"results": [], "total_reports": 4})
    assert (h.step, h.has("training.loss")) == (4, False)


@pytest.mark.parametrize("keep", [None, ("training.loss", "validation.loss", "grad.norm", "validation.step",
                                         "validation.diagonality")])
def test_complete_and_require_answer_as_series_would(keep: tuple[str, ...] | None) -> None:
    """complete(metric, k) is True exactly when series(metric, last=k) returns, and require raises
    the same error (same message) when it does not: for watched metrics (O(1)) and others, as the
    window rolls, after a reset and after a state load, with a metric mapped to null."""
    import random

    rng = random.Random(1)
    names = {"grad.norm": "gn", "validation.attention_score": None}
    h = History(7, names, keep)
    metrics = ("training.loss", "validation.loss", "grad.norm", "validation.diagonality",
               "validation.attention_score")
    checked = raised = 0
    for i in range(60):
        r = {"validation.step": float(i)}
        for m, reported in (("training.loss", "training.loss"), ("validation.loss", "validation.loss"),
                            ("grad.norm", "gn"), ("validation.diagonality", "validation.diagonality")):
            if rng.random() < 0.85:
                r[reported] = rng.random()
        h.append(r)
        if i == 25:
            h.reset()
        if i == 40:
            state = json.loads(json.dumps(h.state_dict()))
            h = History(7, names, keep)
            h.load_state_dict(state)
        for m in metrics:
            for k in (1, 2, 3, 7, 9):
                try:
                    h.series(m, last=k)
                    expected = None
                except Exception as e:   # MissingMetricError; StopIteration for null on an empty window
                    expected = e
                assert h.complete(m, k) == (expected is None), (i, m, k)
                if expected is None:
                    h.require(m, k)
                else:
                    with pytest.raises(type(expected)) as info:
                        h.require(m, k)
                    assert str(info.value) == str(expected)
                    raised += 1
                checked += 1
    assert raised > 100 and checked - raised > 100
