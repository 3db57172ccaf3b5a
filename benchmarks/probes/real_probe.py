"""Probe single real tiny-Tacotron2 trials without Ray: where is the unstable region, does a fault harm?

    python -m benchmarks.probes.real_probe --data-dir data/corpus --steps 300 --out probe.json \\
        '{"learning_rate": 0.01}' '{"learning_rate": 0.002, "_lr_spike_after_step": 150, "_lr_spike_factor": 20, "_lr_spike_threshold": 0.0015}'

Each positional argument is a JSON config (on top of tiny-preset defaults, 1 thread, validation
every 50 steps); the trials run one after the other through ``LocalSession``
(``benchmarks.real_faults.run_spiked``, so the ``_lr_spike_*`` keys work). Writes, per config, every
report's contract metrics, whether it ends usable (benchmarks/usable.py) and the wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

KEEP = ("training.step", "validation.loss", "training.loss", "grad.norm", "validation.attention_score",
        "validation.gate_accuracy", "learning_rate", "nan_skips", "restored_from_nan")


def probe(config: dict[str, Any], data_dir: str, steps: int, interval: int) -> dict[str, Any]:
    from benchmarks.real_faults import run_spiked
    from tuner.training.session import LocalSession

    full = {"data_dir": data_dir, "preset": "tiny", "max_steps": steps, "validation_interval": interval,
            "num_threads": 1, "tensorboard": False, "device": "cpu", **config}
    t0 = time.time()
    error = None
    with tempfile.TemporaryDirectory() as tmp:
        session = LocalSession(tmp, num_cpus=1)
        try:
            run_spiked(full, session)
        except Exception as e:  # noqa: BLE001 - a failing trial is a result here
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        reports = [{k: float(r[k]) for k in KEEP if k in r} for r in session.reports]
    return {"config": config, "steps": steps, "wall_s": round(time.time() - t0, 1), "error": error,
            "reports": [{k: (v if math.isfinite(v) else None) for k, v in r.items()} for r in reports]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.probes.real_probe", description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="JSON config per trial")
    ap.add_argument("--data-dir", default="data/corpus")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--interval", type=int, default=50)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out)
    runs = []
    for text in args.configs:
        runs.append(probe(json.loads(text), str(Path(args.data_dir).resolve()), args.steps, args.interval))
        out.write_text(json.dumps({"uptime": os.getloadavg(), "runs": runs}, indent=1) + "\n")
        last = runs[-1]["reports"][-1] if runs[-1]["reports"] else {}
        print(json.dumps(runs[-1]["config"]), runs[-1]["wall_s"], "s", {k: last.get(k) for k in KEEP[:6]}, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
