"""The search space of a tiny-trial sweep, shared by the tests that run ``smart-tuner tune``.

No Ray, no torch: it only writes a YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TINY_MODEL = {"decoder_rnn_dim": 64, "attention_rnn_dim": 64, "postnet_embedding_dim": 32,
              "prenet_dim": 32}
# An explosion from step S on that halving the learning rate cures, and guards that keep the
# slow-to-judge rules quiet so the explosion is acted on at once.
EXPLODING_LR = 1.0e-3
RECOVERY_GUARDS = {"training_recovery": {"min_training_time": 0, "min_validation_steps": 100}}


def exploding(after_step: int) -> dict[str, Any]:
    """Trial config entries: an explosion from ``after_step`` on, cured by a halved LR."""
    return {"learning_rate": EXPLODING_LR,
            "inject": {"explode_after_step": after_step, "explode_lr_threshold": 6.0e-4}}


def write_tiny_space(path: Path, corpus: Path, cache: Path, *, config: dict[str, Any] | None = None,
                     smart_tuner: dict[str, Any] | None = None, **top: Any) -> str:
    """Write a tiny-trial search space to ``path``; returns the path as a string.

    The trial: preset tiny with a smaller decoder, batch 4, 8 steps, validation every 2 steps,
    1 thread on the CPU; one search parameter, the seed. ``config`` entries are added to the
    trial config (or replace these), ``smart_tuner`` is the overrides section (none when None),
    ``top`` sets top-level keys (defaults: ``num_samples: 1``, ``max_concurrent: 1``,
    ``scheduler: smart``).
    """
    space: dict[str, Any] = {"num_samples": 1, "max_concurrent": 1, "scheduler": "smart", **top}
    space["config"] = {"data_dir": str(corpus), "cache_dir": str(cache), "preset": "tiny",
                       "model": dict(TINY_MODEL), "batch_size": 4, "max_steps": 8,
                       "validation_interval": 2, "num_threads": 1, "device": "cpu",
                       **(config or {})}
    space["search"] = {"seed": {"randint": [0, 1000]}}
    if smart_tuner is not None:
        space["smart_tuner"] = smart_tuner
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return str(path)
