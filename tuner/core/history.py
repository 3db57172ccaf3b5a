"""History: the bounded per-trial window of reported metrics that the detection rules read.

Results are kept oldest first as dicts of plain floats (non-numeric values are dropped; NaN and
Inf are kept, they are the signal). Cost per result is O(1): a result is appended to a ring
buffer, ``series(metric, last=k)`` reads only the last k results, and the rules that need the
whole window (the best loss, stagnation windows, noise) read incremental trackers
(``tracker``, tuner/core/rules/_streams.py) that are updated as each result arrives. The window holds at most `maxlen` results; the first finite
training loss ever recorded is kept separately (`initial_training_loss`) so the degradation rule
still sees it after the window has rolled. Metrics are looked up by their contract name
(ARCHITECTURE.md) through the config's name map, so a trainable may report other names.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

from tuner.core.config import SmartConfig
from tuner.contract import (ATTENTION_SCORE, GATE_ACCURACY, GRAD_NORM, OVERFITTING_GAP, TRAINING_LOSS,
                            VALIDATION_LOSS, VALIDATION_STEP)

# The metrics the rules read as ``series(metric, last=k)``: the History notes the latest result
# that lacks each, so ``require``/``complete`` answer for the last k results in O(1) and a rule
# reads its k values only when it compares them (most results need only the latest).
WATCHED = (GRAD_NORM, VALIDATION_LOSS, TRAINING_LOSS, ATTENTION_SCORE, GATE_ACCURACY, OVERFITTING_GAP)


class MissingMetricError(KeyError, ValueError):
    """A rule needs a metric the trial did not report; the message lists what it did report."""

    def __init__(self, metric: str, reported_as: str, reported: Iterable[str]) -> None:
        names = ", ".join(sorted(reported)) or "nothing"
        alias = f" (reported as {reported_as!r})" if reported_as != metric else ""
        self.message = (f"metric {metric!r}{alias} missing from the trial's result; the trial reported: "
                        f"{names}. Report it, or map/disable it in the config section `metrics`")
        super().__init__(self.message)

    def __str__(self) -> str:   # KeyError would quote the message
        return self.message


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Tracker(Protocol):
    """Incremental statistics fed every result the History records (see ``History.tracker``)."""

    def push(self, result: Mapping[str, float]) -> None: ...


class _Ring:
    """Fixed-capacity FIFO of results: O(1) append, O(k) read of the last k, O(1) indexing."""

    __slots__ = ("cap", "buf", "start", "n")

    def __init__(self, cap: int) -> None:
        self.cap, self.buf, self.start, self.n = cap, [None] * cap, 0, 0

    def append(self, item: Any) -> None:
        if self.n < self.cap:
            self.buf[(self.start + self.n) % self.cap] = item
            self.n += 1
        else:
            self.buf[self.start] = item
            self.start = (self.start + 1) % self.cap

    def tail(self, k: int | None) -> list[Any]:
        k = self.n if k is None else max(0, min(k, self.n))
        stop = self.start + self.n               # one past the newest, unwrapped: < 2 * cap
        first = stop - k
        if stop <= self.cap:                     # list slices: the rules read a tail per result
            return self.buf[first:stop]
        if first >= self.cap:
            return self.buf[first - self.cap:stop - self.cap]
        return self.buf[first:] + self.buf[:stop - self.cap]

    def __getitem__(self, index: int) -> Any:
        if not -self.n <= index < self.n:
            raise IndexError(index)
        return self.buf[(self.start + index % self.n) % self.cap]

    def __len__(self) -> int:
        return self.n

    def clear(self) -> None:
        self.buf, self.start, self.n = [None] * self.cap, 0, 0


class History:
    """Bounded window of one trial's results (plain floats), oldest first.

    `names` maps contract metric names to the names the trainable reports (None = not reported).
    `keep`: the reported names to store (None = every numeric value); a trainable reports some 30
    metrics and the rules read 9, so a monitor keeps only those (memory at 1,000 trials).
    """

    def __init__(self, maxlen: int = 200, names: Mapping[str, str | None] | None = None,
                 keep: Iterable[str] | None = None,
                 alternatives: Mapping[str, Iterable[str]] | None = None) -> None:
        if maxlen < 1:
            raise ValueError(f"History maxlen must be >= 1, got {maxlen!r}")
        self.maxlen = maxlen
        self.names: dict[str, str | None] = dict(names or {})
        # reported name -> other names stored under it when a result lacks it (config `metrics` list)
        self.alternatives = {k: tuple(v) for k, v in (alternatives or {}).items()}
        self.keep: frozenset[str] | None = None if keep is None else frozenset(keep)
        self._keep_order = None if keep is None else tuple(self.keep)   # the same order, read faster
        self._reported: tuple[Any, ...] = ()         # every key of the latest result, for errors
        # reported name of each WATCHED metric -> position (count of results before it) of the
        # latest result that lacked it
        self._watched = frozenset(n for n in (self.names.get(m, m) for m in WATCHED) if n is not None)
        self._lacking: dict[str, int] = {}
        self._results = _Ring(maxlen)
        self._trackers: dict[Any, Tracker] = {}
        # set by tuner.core.rules.active_rules: the loss tracker overfitting and stagnation share
        self.shared_losses: Any = None
        self.initial_training_loss: float | None = None
        self.total_reports = 0
        # The rules read the latest result ~20 times per result and its step ~9 times: kept here
        # rather than looked up in the ring each time (None: empty window / not computed yet).
        self._latest: dict[str, float] | None = None
        self._step: int | None = None

    # ---------------------------------------------------------------- construction
    @classmethod
    def for_config(cls, cfg: SmartConfig) -> History:
        """The window a TrialMonitor keeps: the mapped metrics and the early-stopping metric only."""
        keep = {n for n in cfg.metrics.values() if n is not None}
        keep.add(cfg.metric_name(cfg.early_stopping.metric) or cfg.early_stopping.metric)
        keep.update(n for names in cfg.metric_alternatives.values() for n in names)
        return cls(cfg.diagnostics.history_size, cfg.metrics, keep, cfg.metric_alternatives)

    @classmethod
    def from_results(cls, results: Iterable[Mapping[str, Any]], cfg: SmartConfig | None = None,
                     maxlen: int | None = None) -> History:
        """A History holding `results` (oldest first); window size and name map from `cfg`."""
        results = list(results)
        size = maxlen or (cfg.diagnostics.history_size if cfg else max(len(results), 1))
        history = cls(size, cfg.metrics if cfg else None, None, cfg.metric_alternatives if cfg else None)
        for result in results:
            history.append(result)
        return history

    def append(self, result: Mapping[str, Any]) -> None:
        """Record one result; keeps numeric values as floats (NaN/Inf kept as they are)."""
        self._reported = tuple(result)   # str() of each key only when an error message needs it
        if self._keep_order is None:
            clean = {str(k): f for k, v in result.items() if (f := v if type(v) is float else _as_float(v)) is not None}
        else:
            # plain floats (most values) as they are; anything else through _as_float (None: dropped)
            clean = {k: v if type(v := result[k]) is float else _as_float(v) for k in self._keep_order if k in result}
            if None in clean.values():
                clean = {k: v for k, v in clean.items() if v is not None}
        for name, others in self.alternatives.items():
            if name not in clean:
                other = next((o for o in others if o in clean), None)
                if other is not None:
                    clean[name] = clean[other]
        self._record(clean)
        if self.initial_training_loss is None:
            name = self.reported_name(TRAINING_LOSS)
            loss = clean.get(name) if name else None
            if loss is not None and math.isfinite(loss):
                self.initial_training_loss = loss

    def _record(self, clean: dict[str, float]) -> None:
        """Put a cleaned result into the window and feed it to the trackers."""
        if not self._watched <= clean.keys():   # one set comparison for the usual complete result
            for name in self._watched:
                if name not in clean:
                    self._lacking[name] = self.total_reports
        self._results.append(clean)
        for tracker in self._trackers.values():
            tracker.push(clean)
        self.total_reports += 1
        self._latest, self._step = clean, None

    def reset(self, keep_initial: bool = True) -> None:
        """Empty the window (after a rollback); keep the initial training loss unless told not to."""
        self._results.clear()
        self._trackers.clear()
        self._latest = self._step = None
        if not keep_initial:
            self.initial_training_loss = None

    # ---------------------------------------------------------------- lookup
    @property
    def last_reported(self) -> tuple[str, ...]:
        """Every key of the latest result (as str), for error messages."""
        return tuple(map(str, self._reported))

    def reported_name(self, metric: str) -> str | None:
        return self.names.get(metric, metric)

    def enabled(self, metric: str) -> bool:
        """False when the config maps `metric` to null (the trainable does not report it)."""
        return self.reported_name(metric) is not None

    def has(self, metric: str) -> bool:
        """True when the latest result carries `metric`."""
        name = self.reported_name(metric)
        return self._latest is not None and name is not None and name in self._latest

    def complete(self, metric: str, last: int) -> bool:
        """True when each of the last `last` results (all when fewer) carries `metric`, the
        condition on which ``series(metric, last)`` returns rather than raises. O(1) for the
        WATCHED metrics."""
        name = self.names.get(metric, metric)
        if name is None:
            return False
        if name not in self._watched:
            return all(name in r for r in self._results.tail(last))
        return self._lacking.get(name, -1) < self.total_reports - min(last, self._results.n)

    def require(self, metric: str, last: int) -> None:
        """Raise the MissingMetricError that ``series(metric, last)`` would raise, if any, without
        reading the values: a rule reads them only when it compares them."""
        if not self.complete(metric, last):
            self.series(metric, last)

    def tracker(self, key: Any, factory: Callable[[History], Tracker]) -> Tracker:
        """The incremental statistics ``key`` of this window: created by ``factory(self)`` on first
        use and fed the current window once (O(window) once), then every new result (O(1)).
        A reset (rollback) or a state load drops them; they are rebuilt from the window."""
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = factory(self)
            for result in self._results.tail(None):
                tracker.push(result)
        return tracker

    def series(self, metric: str, last: int | None = None) -> list[float]:
        """Values of `metric` over the window (or its `last` results, O(last)), oldest first.

        Raises MissingMetricError when one of those results lacks it.
        """
        name, rows = self.names.get(metric, metric), self._results.tail(last)
        try:
            if name is None:
                raise KeyError(metric)
            return [r[name] for r in rows]
        except KeyError:
            raise self._missing(metric, name, rows) from None

    def _missing(self, metric: str, name: str | None, rows: Iterable[dict[str, float]]) -> MissingMetricError:
        lacking = next(r for r in rows if name is None or name not in r)
        reported = lacking.keys() if self.keep is None else self.last_reported
        return MissingMetricError(metric, name or "null", reported)

    def latest(self, metric: str) -> float:
        """The latest value of `metric` (MissingMetricError when absent, IndexError when empty)."""
        name, last = self.names.get(metric, metric), self._latest
        if last is None:
            raise IndexError("latest of an empty History")
        if name is None or name not in last:
            raise self._missing(metric, name, (last,))
        return last[name]

    def optional_series(self, metric: str, last: int | None = None) -> list[float]:
        """Values of an optional metric from the results that carry it (no error when absent)."""
        name = self.names.get(metric, metric)
        if name is None:
            return []
        return [r[name] for r in self._results.tail(last) if name in r]

    @property
    def step(self) -> int:
        """The latest `validation.step` (the count of reports so far when not reported)."""
        if self._step is None:
            self._step = self._latest_step()
        return self._step

    def _latest_step(self) -> int:
        name = self.reported_name(VALIDATION_STEP)
        if self._latest is not None and name and name in self._latest:
            value = self._latest[name]
            if math.isfinite(value):
                return int(value)
        return self.total_reports

    # ---------------------------------------------------------------- container protocol
    def __len__(self) -> int:
        return self._results.n

    def __iter__(self) -> Iterator[dict[str, float]]:
        return iter(self._results.tail(None))

    def __getitem__(self, index: int) -> dict[str, float]:
        return self._results[index]

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        return {"maxlen": self.maxlen, "results": [dict(r) for r in self._results.tail(None)],
                "last_reported": list(self.last_reported),
                "initial_training_loss": self.initial_training_loss, "total_reports": self.total_reports}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self._results = _Ring(self.maxlen)
        for r in d["results"]:
            self._results.append(dict(r))
        self._trackers.clear()
        self._latest = self._results[-1] if len(self._results) else None
        self._step = None
        self.initial_training_loss = d.get("initial_training_loss")
        self.total_reports = int(d.get("total_reports", len(self._results)))
        self._reported = tuple(d.get("last_reported", ()))
        first = self.total_reports - len(self._results)      # position of the oldest result kept
        self._lacking = {name: first + i for i, r in enumerate(self._results.tail(None))
                         for name in self._watched if name not in r}
