"""What a sweep prints: Smart Tuner's progress table (Ray's ``CLIReporter`` idiom) and the feed of
interventions that the driver-side callbacks share.

``SweepProgress`` is a Ray Tune ``Callback``. Ray's own output is switched off for a Smart Tuner
sweep (``RunConfig(verbose=0)``, ``smart-tuner tune -v`` brings it back), and this prints instead:

- a status table at most every ``interval_s`` seconds, and only when a trial reported since the
  last one: trial, status, training step, validation.loss, attention score, gate accuracy,
  learning rate (the one the trial reported: after a recovery the new one), interventions;
- one line per trial when it ends (``trial 1a2b3c4d TERMINATED at step 200: validation.loss ...``);
- the final table when the experiment ends.

The intervention lines themselves are printed by the Supervisor when they happen.

``InterventionFeed`` reads ``<experiment_dir>/interventions.jsonl`` incrementally (from the byte
offset it stopped at, whole lines only). It is the one way interventions reach the callbacks
(MLflow, TensorBoard markers, this table): the file is written by the Supervisor before Ray calls
the callbacks with the same result, and it survives ``Tuner.restore`` and a remote scheduler.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from ray.tune import Callback

from tuner.contract import INTERVENTIONS_FILE

__all__ = ["COLUMNS", "InterventionFeed", "SweepProgress", "format_table"]

# (header, result key): the table's metric columns, in order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("step", "training.step"),
    ("validation.loss", "validation.loss"),
    ("attention", "validation.attention_score"),
    ("gate.acc", "validation.gate_accuracy"),
    ("lr", "learning_rate"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value.is_integer() and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], metric: str | None = None,
                 mode: str = "min") -> list[str]:
    """The status table as lines. ``rows``: dicts with ``trial``, ``status``, ``interventions`` and
    the result keys of ``COLUMNS``. The best row by ``metric`` (finite values only) is marked ``*``."""
    best = None
    if metric:
        finite = [(float(r[metric]), i) for i, r in enumerate(rows)
                  if isinstance(r.get(metric), (int, float)) and math.isfinite(float(r[metric]))]
        if finite:
            best = (min(finite) if mode == "min" else max(finite))[1]
    header = ["trial", "status", *(h for h, _ in COLUMNS), "interventions"]
    body = [[("* " if i == best else "  ") + str(r["trial"]), str(r["status"]),
             *(_fmt(r.get(key)) for _, key in COLUMNS), str(r.get("interventions", 0))]
            for i, r in enumerate(rows)]
    widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
    header[0] = "  " + header[0]
    widths[0] = max(widths[0], len(header[0]))

    def join(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if k < 2 else c.rjust(w)
                         for k, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [join(header), *(join(b) for b in body)]


class InterventionFeed:
    """New records of ``interventions.jsonl`` since the last call (see the module docstring)."""

    def __init__(self, experiment_dir: str | Path | None) -> None:
        self.experiment_dir = None if experiment_dir is None else Path(experiment_dir)
        self.offset = 0

    def poll(self) -> list[dict[str, Any]]:
        """Records appended since the last poll; a line still being written waits for the next."""
        if self.experiment_dir is None:
            return []
        path = self.experiment_dir / INTERVENTIONS_FILE
        try:
            with path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a killed writer: skip it
                continue
            if isinstance(record, dict) and "trial_id" in record:
                records.append(record)
        return records


class SweepProgress(Callback):
    """Smart Tuner's console progress of a sweep (see the module docstring)."""

    def __init__(self, metric: str = "validation.loss", mode: str = "min",
                 experiment_dir: str | Path | None = None, interval_s: float = 60.0,
                 out: TextIO | None = None) -> None:
        self.metric, self.mode = metric, mode
        self.interval_s = float(interval_s)
        self.feed = InterventionFeed(experiment_dir)
        self.out = out
        self.last: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self.start = time.monotonic()
        self._printed_at = -math.inf
        self._fresh = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["out"] = None  # a stream does not pickle (tuner.pkl); stdout after restore
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.start, self._printed_at = time.monotonic(), -math.inf

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def _poll(self, trial: Any | None = None) -> None:
        if self.feed.experiment_dir is None and trial is not None:
            from tuner.raytune._ray_compat import experiment_dir

            self.feed.experiment_dir = experiment_dir(trial)
        for record in self.feed.poll():
            tid = str(record["trial_id"])
            self.counts[tid] = self.counts.get(tid, 0) + 1

    def rows(self, trials: Sequence[Any]) -> list[dict[str, Any]]:
        """One row per trial, in the order Ray created them."""
        rows = []
        for trial in trials:
            tid = str(trial.trial_id)
            result = self.last.get(tid, {})
            rows.append({"trial": tid, "status": str(trial.status),
                         "interventions": self.counts.get(tid, 0),
                         **{key: result.get(key) for _, key in COLUMNS},
                         self.metric: result.get(self.metric)})
        return rows

    def table(self, trials: Sequence[Any]) -> list[str]:
        """Status line + table."""
        statuses: dict[str, int] = {}
        for trial in trials:
            statuses[str(trial.status)] = statuses.get(str(trial.status), 0) + 1
        elapsed = int(time.monotonic() - self.start)
        head = (f"== {elapsed // 3600:d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d} == "
                + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
                + f" | * best {self.metric} ({self.mode})")
        return [head, *format_table(self.rows(trials), self.metric, self.mode)]

    # ---- Ray hooks ---------------------------------------------------------------------------
    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.last[str(trial.trial_id)] = dict(result)
        self._fresh = True
        self._poll(trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self._fresh and now - self._printed_at >= self.interval_s:
            self._printed_at, self._fresh = now, False
            self._print("\n".join(self.table(trials)))

    def _ended(self, trial: Any, how: str) -> None:
        self._poll(trial)
        result = self.last.get(str(trial.trial_id), {})
        value = result.get(self.metric)
        self._print(f"[smart-tuner] trial {trial.trial_id} {how} at step "
                    f"{_fmt(result.get('training.step'))}: {self.metric} {_fmt(value)}, "
                    f"{self.counts.get(str(trial.trial_id), 0)} interventions")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, "finished")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, "errored")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._poll()
        self._print("\n".join(self.table(trials)))
