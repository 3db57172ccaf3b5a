"""``train_tts(config)``: the Tacotron2 training loop inside one Ray Tune trial.

Use it as a Ray Tune function trainable::

    tune.Tuner(train_tts, param_space={"data_dir": "/abs/corpus", "learning_rate": 1e-3, ...})

Config keys and their defaults: ``DEFAULTS`` (below, from ``tuner.training.settings``); unknown
keys are ignored, a bad value of a known key raises ``TrainConfigError``. At every validation
(each ``validation_interval`` steps) the trial reports, as plain floats:

- contract: ``training.loss``, ``validation.loss``, ``grad.norm`` (pre-clip, max over the
  interval's taken steps; NaN when none was taken), ``validation.attention_score``, ``validation.gate_accuracy``,
  ``overfitting.gap`` (= validation.loss - training.loss), ``validation.step``;
- extra: ``grad.norm_mean``, ``training.loss_{mel,mel_postnet,gate,guided_attention}``,
  ``validation.loss_{...}``, ``validation.early_stop_fraction``, ``learning_rate``,
  ``nan_skips``, ``restored_from_nan``, ``training.skipped_steps``, ``training.overflow_steps``,
  ``training.interval_steps`` (tuner/training/stats.py), ``training.step``, ``epoch``, ``restart_generation``,
  ``num_threads``, ``best.validation.loss``, ``best.validation.attention_score``,
  ``training.steps_per_s`` (validation excluded), ``validation.seconds``;

with a checkpoint folder holding ``checkpoint.pt`` (``torch.load(..., weights_only=True)``).
``tuner/training/loop.py`` documents the step, the safeguards and what a restore applies;
``tuner/training/faults.py`` the ``inject`` keys; ``tuner/training/schedule.py`` the LR schedule.

``run_training(config, session)`` runs the same loop through any ``TrialSession`` (tests and
benchmarks use ``LocalSession``, no Ray needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner.training.session import LocalSession, RaySession, TrialSession
from tuner.training.settings import DEFAULTS, TrainConfigError, TrainSettings

__all__ = [
    "DEFAULTS",
    "TrainConfigError",
    "TrainSettings",
    "train_tts",
    "run_training",
    "LocalSession",
    "RaySession",
    "TrialSession",
]


def run_training(config: Mapping[str, Any], session: TrialSession) -> Any:
    """Validate ``config``, then train through ``session``; returns the finished ``Trainer``."""
    from tuner.training.loop import Trainer

    settings = TrainSettings.from_config(config)
    trainer = Trainer(settings, session, config)
    trainer.run()
    return trainer


def train_tts(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: one Tacotron2 trial (see the module docstring)."""
    run_training(config, RaySession())
