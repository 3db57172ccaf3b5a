"""Smart Tuner: Ray Tune sweeps of Tacotron2 TTS models that detect and repair failing trials.

`import tuner` stays light: it does not import Ray or torch. `SmartScheduler` (tuner/raytune/scheduler.py,
which needs Ray) is imported lazily on first access.
"""
from __future__ import annotations

from typing import Any

from tuner.core.config import ConfigError, SmartConfig, config_from_dict, load_config
from tuner.core.history import History, MissingMetricError
from tuner.core.rules import Problem, diagnose

__all__ = ["ConfigError", "History", "MissingMetricError", "Problem", "SmartConfig", "SmartScheduler",
           "config_from_dict", "diagnose", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "SmartScheduler":
        from tuner.raytune.scheduler import SmartScheduler   # imports Ray
        return SmartScheduler
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")
