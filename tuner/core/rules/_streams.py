"""Incremental statistics of a trial's losses, updated in O(1) per result for the slow rules.

``LossTracker`` is fed every result a History records (``History.tracker`` creates it, replays
the current window into it once, and pushes each new result; a rollback empties it). Per result it
updates, for validation.loss (``val``) and training.loss (``train``):

- the smoothed value: the median of the last ``smooth`` values, NaN until there are ``smooth`` of
  them or when one is not finite (``smooth`` = 1: the value);
- the best smoothed validation loss of the window (the History's ``maxlen`` results), its latest
  position and the smoothed training loss at that position (a monotonic queue: amortised O(1));
- for each stagnation window n: the best smoothed value of the last n results and the best of the
  results before them (two monotonic queues);
- the report-to-report noise of the raw validation loss over the last ``noise_window`` finite
  values: sigma = mean |second difference| x sqrt(pi / 2) / sqrt(6) (blind to a linear trend: for
  white noise of std s the second difference is normal with std s sqrt(6), whose mean absolute
  value is that std x sqrt(2 / pi)), times (1 + 1 / sqrt(k)) for k differences, an upper bound
  that keeps a low estimate from a few reports from passing noise for a rise; also relative to
  the mean level of those values. Sliding
  sums: O(1). (The mean absolute value, not the median: it needs about half the reports for the
  same precision, and an outlier only makes the rules it feeds more cautious.)
- the run length of identical (training.loss, validation.loss) pairs (frozen metrics), and of
  validation losses each above the one before (``rising``).

Positions count results since the tracker (or the window) started. The bounded sequences are
plain lists trimmed from the front, not deques: a short list lives next to its tracker in
memory while a deque allocates a 64-slot block elsewhere, and with 1,000 trials' trackers out
of the CPU cache a push cost about 1.5 x as much with deques (BENCHMARKS.md, "Rule cost (item
5)", ``python -m benchmarks.probes.rule_cost tracker``). NaN policy: non-finite values
are skipped by the smoothing, the bests and the noise; a result without a finite value leaves the
smoothed value NaN (never a best, never above a limit).
"""
from __future__ import annotations

import math
from typing import Mapping

SQRT6 = math.sqrt(6.0)
MEAN_ABS_TO_STD = math.sqrt(math.pi / 2)   # std of a zero-mean normal / its mean absolute value


class SlidingMin:
    """Minimum of (value, position, payload) entries with positions in a sliding range; ties keep the
    latest position. Amortised O(1) per push and eviction (a monotonic queue, in a list: see the
    module docstring)."""

    __slots__ = ("q",)

    def __init__(self) -> None:
        self.q: list[tuple[float, int, float]] = []

    def slide(self, value: float, pos: int, oldest: int, payload: float = math.nan) -> None:
        """Push (value, pos, payload) (a non-finite value is not pushed), then drop the entries
        at positions before ``oldest``: the range is now [oldest, pos]."""
        q = self.q
        if math.isfinite(value):
            while q and q[-1][0] >= value:
                q.pop()
            q.append((value, pos, payload))
        while q and q[0][1] < oldest:
            del q[0]

    def best(self) -> tuple[float, int, float] | None:
        return self.q[0] if self.q else None


class EarlierLevel:
    """The median of the finite values of one reported metric among the ``span`` results before
    the latest one (``before``, NaN when none of them is finite): the level a jump of the latest
    value is measured against (``gradient_explosion``'s ``critical_loss_jump``). The median, not
    the lowest: one low outlier among them does not make an ordinary report look like a jump.
    O(span) per result."""

    __slots__ = ("name", "before", "_last", "_span")

    def __init__(self, name: str, span: int) -> None:
        self.name = name
        self.before: float = math.nan
        self._last: list[float] = []     # the last `span` values, oldest first
        self._span = span

    def push(self, result: Mapping[str, float]) -> None:
        finite = sorted(filter(math.isfinite, self._last))
        self.before = _median(finite) if finite else math.nan
        self._last.append(result.get(self.name, math.nan))
        if len(self._last) > self._span:
            del self._last[0]


def _smoothed(values: list[float], size: int) -> float:
    """Median of the last `size` values (the list holds no more) once there are `size` of them
    and they are all finite; NaN before (the first reports of a window are not smoothed values
    and never become a best)."""
    if len(values) < size or not all(map(math.isfinite, values)):
        return math.nan
    return _median(sorted(values))


def _median(ordered: list[float]) -> float:
    """statistics.median of an already sorted, non-empty list (the same arithmetic, without its
    copying and checks: two medians per result per tracker)."""
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


class LossTracker:
    """See the module docstring. ``val``/``train``: the reported names of the two losses."""

    def __init__(self, val: str, train: str, maxlen: int, smooth: int, noise_window: int,
                 windows: tuple[int, ...] = (), keep: int = 8) -> None:
        self.val_name, self.train_name = val, train
        self.maxlen, self.smooth = maxlen, max(1, smooth)
        self.count = 0                                   # results pushed (position of the next)
        # bounded lists, oldest first (see the module docstring), each with its length limit
        self._raw_val: list[float] = []                  # the last `smooth` values
        self._raw_train: list[float] = []
        self._noise_vals: list[float] = []               # the last 3 finite values
        self._d2: list[float] = []                       # the last d2_max |second differences|
        self._d2_max = max(2, noise_window - 2)
        self._levels: list[float] = []                   # the last levels_max finite values
        self._levels_max = max(4, noise_window)
        self._d2_sum = self._level_sum = 0.0
        # the smoothed values a rule reads back: the stagnation windows, ``keep`` (overfitting's
        # critical_rise_reports) and one more
        self.smooth_val: list[float] = []
        self._smooth_max = max(windows + (self.smooth, keep)) + 1
        self.smooth_train = math.nan
        self._best = SlidingMin()
        self.windows = windows
        self._recent = {n: SlidingMin() for n in windows}
        self._before = {n: SlidingMin() for n in windows}
        self._sliding = tuple((n, self._recent[n], self._before[n]) for n in windows)
        self.sigma = math.nan          # absolute noise of the raw validation loss
        self.sigma_rel = math.nan      # ... relative to its level
        self.frozen = 0                # results in a row with identical (train, val)
        self.rising = 0                # results in a row whose validation loss is above the previous one
        self.read_by_overfitting = False   # see tuner/core/rules/_training.py _overfitting_losses
        self._last_pair: tuple[float, float] | None = None

    # ------------------------------------------------------------------ update
    def push(self, result: Mapping[str, float]) -> None:
        pos = self.count
        self.count += 1
        v, t = result.get(self.val_name, math.nan), result.get(self.train_name, math.nan)
        raw_val, raw_train = self._raw_val, self._raw_train
        raw_val.append(v)
        raw_train.append(t)
        if len(raw_val) > self.smooth:               # both hold the same count
            del raw_val[0], raw_train[0]
        sv, st = _smoothed(raw_val, self.smooth), _smoothed(raw_train, self.smooth)
        self.smooth_val.append(sv)
        if len(self.smooth_val) > self._smooth_max:
            del self.smooth_val[0]
        self.smooth_train = st
        first = pos - self.maxlen + 1                    # oldest position still in the window
        self._best.slide(sv, pos, first, st)
        for n, recent, before in self._sliding:
            recent.slide(sv, pos, pos - n + 1)
            # the value leaving the recent n (NaN, not pushed, before there is one)
            leaving = self.smooth_val[-n - 1] if pos - n >= 0 and len(self.smooth_val) > n else math.nan
            before.slide(leaving, pos - n, first)
        if math.isfinite(v):
            self._noise_vals.append(v)
            if len(self._noise_vals) > 3:
                del self._noise_vals[0]
            self._noise()
        pair = (t, v)
        # NaN is never above nor below: a NaN ends the run
        self.rising = self.rising + 1 if self._last_pair is not None and v > self._last_pair[1] else 0
        self.frozen = self.frozen + 1 if pair == self._last_pair else 1   # NaN pairs never equal
        self._last_pair = pair

    def _noise(self) -> None:
        """Slide the sums of |second differences| and of levels by the newest finite value."""
        value = self._noise_vals[-1]
        if len(self._levels) == self._levels_max:
            self._level_sum -= self._levels.pop(0)
        self._levels.append(value)
        self._level_sum += value
        if len(self._noise_vals) < 3:
            return
        a, b, c = self._noise_vals
        if len(self._d2) == self._d2_max:
            self._d2_sum -= self._d2.pop(0)
        d2 = abs(c - 2 * b + a)
        self._d2.append(d2)
        self._d2_sum += d2
        if len(self._d2) < 2:
            return
        k = len(self._d2)
        # an upper confidence bound: the estimate from k second differences, x (1 + 1/sqrt(k))
        self.sigma = max(0.0, self._d2_sum) / k * MEAN_ABS_TO_STD / SQRT6 * (1 + 1 / math.sqrt(k))
        level = self._level_sum / len(self._levels)
        self.sigma_rel = self.sigma / level if level > 0 else math.nan

    # ------------------------------------------------------------------ queries
    @property
    def in_window(self) -> int:
        return min(self.count, self.maxlen)

    def best(self) -> tuple[float, int, float] | None:
        """(best smoothed validation loss in the window, its latest position, smoothed training
        loss there), or None when no finite value."""
        return self._best.best()

    def recent_smoothed(self, n: int) -> list[float]:
        """The last n smoothed validation losses (fewer at the start), oldest first."""
        n = min(n, len(self.smooth_val), self.in_window)
        return [self.smooth_val[i] for i in range(len(self.smooth_val) - n, len(self.smooth_val))]

    def improvement(self, n: int) -> float | None:
        """Best smoothed value before the last n results minus the best of the last n; None when
        the window holds n results or fewer or either part has no finite value."""
        if self.in_window <= n:
            return None
        before, recent = self._before[n].best(), self._recent[n].best()
        if before is None or recent is None:
            return None
        return before[0] - recent[0]
