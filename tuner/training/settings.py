"""Trial config -> validated ``TrainSettings`` for ``train_tts``.

``DEFAULTS`` is the one place the trainable's defaults live (``tuner.trainable.DEFAULTS`` is the
same dict). ``from_config`` ignores unknown keys (a sweep refuses them before Ray starts, see
``tuner/training/space_check.py``); a bad value of a known key raises ``TrainConfigError`` with a
one-line message naming the key, the value and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner.contract import GENERATION_KEY
from tuner.errors import Checks, UserError

__all__ = ["DEFAULTS", "DEFAULT_CORPUS_DIR", "TrainConfigError", "TrainSettings", "INJECT_KEYS",
           "INTEGER_KEYS", "NUMERIC_KEYS", "check_value", "unknown_key"]

DEFAULT_CORPUS_DIR = Path.home() / ".cache" / "smart-tuner" / "corpus"

DEFAULTS: dict[str, Any] = {
    # LJSpeech-layout dataset. None -> the built-in corpus at ~/.cache/smart-tuner/corpus, which
    # `smart-tuner corpus DIR` builds. Relative paths are taken from the directory the sweep was
    # started in (Ray moves trials into their own folder).
    "data_dir": None,
    "cache_dir": None,  # feature cache folder; None -> model.data's default (beside the dataset)
    "preset": "tiny",  # Tacotron2Config.preset name: "tiny" (2 CPU cores) | "full" (GPU)
    "model": {},  # Tacotron2Config overrides on top of the preset, e.g. {"decoder_rnn_dim": 128}
    "learning_rate": 2e-3,  # peak AdamW LR (reached after warm-up); the tiny preset aligns with it
    "batch_size": 16,
    "dropout": 0.5,  # model.set_dropout(p): conv dropout p, RNN dropout 0.2 p (the paper: 0.5 / 0.1)
    "weight_decay": 1e-6,  # AdamW decoupled weight decay
    "grad_clip_thresh": 5.0,  # clip_grad_norm_ threshold (ARCHITECTURE.md: "clip (5.0) always")
    "guided_attention_weight": 1.5,  # as benchmarks/probes/train_probe.py aligns the tiny preset
    "gate_loss_weight": 1.0,
    "gate_threshold": 0.5,  # sigmoid(gate) >= threshold means "stop" in gate metrics
    "gate_pos_weight": 5.0,  # BCE pos_weight: stop frames are ~1% of frames
    "warmup_steps": 20,  # linear warm-up from lr/warmup_steps to lr (short: tiny aligns in ~150 steps)
    "lr_schedule": "exponential",  # after warm-up: "exponential" | "cosine" | "constant"
    "lr_decay_steps": 4000,  # exponential: LR halves every lr_decay_steps; cosine: its length
    "min_lr_ratio": 0.01,  # the schedule never goes below learning_rate * min_lr_ratio
    "validation_interval": 50,  # training steps between validations (= reports, = checkpoints)
    "max_steps": 2000,  # training steps of the trial (counted from its last fresh start)
    "val_fraction": 0.05,
    "split_seed": 1234,  # train/validation split seed, the same for every trial of a sweep
    "seed": 0,  # weights, dropout and batch order; a restart from scratch uses seed + generation
    "device": "auto",  # "auto" (CUDA when present) | "cpu" | "cuda"
    # mixed precision: "auto" (bf16 on CUDA, none on CPU) | "none" | "bf16" | "fp16" (with a
    # GradScaler); bf16/fp16 given explicitly apply on CPU too (torch's CPU autocast)
    "amp": "auto",
    "num_threads": None,  # torch threads; None -> the trial's CPU count (Ray), else torch's default
    "reset_attention": False,  # on restore: re-initialise the attention layers
    "lr_restart": False,  # on restore: restart the LR schedule (warm-up again from learning_rate)
    "inject": {},  # fault injection, see tuner/training/faults.py
    "tensorboard": True,  # TensorBoard scalars + validation images in the trial folder
    "max_nan_restores": 5,  # in-process restores after non-finite parameters before the trial fails
    # training utterances BatchNorm's running statistics are re-estimated on before each validation
    # (stale statistics doubled young trials' validation loss, BENCHMARKS.md); 0 = off
    "batchnorm_refresh": 64,
    GENERATION_KEY: 0,  # set by the scheduler on "restart": newer generation -> fresh start
}

INJECT_KEYS = frozenset(
    {
        "nan_at_step",
        "nan_params_at_step",
        "explode_after_step",
        "explode_lr_after_step",
        "explode_lr_threshold",
        "explode_factor",
        "lr_spike_at_step",
        "lr_spike_steps",
        "lr_spike_factor",
    }
)


class TrainConfigError(UserError):
    """A bad value of a known ``train_tts`` config key (one line: key, value, fix)."""


# One line: ``train_tts config key 'dropout' must be a number in [0, 0.9], got 1.5; fix it ...``
_CHECK = Checks(TrainConfigError, "train_tts config key {name!r} must be {fix}, got {value!r}; fix it "
                "in the trial config or search space", "{name}: unknown {what} {key!r}; {hint}",
                listing="known", quote=True)

_POS: dict[str, Any] = {"lo": 0.0, "lo_open": True}
_NONNEG: dict[str, Any] = {"lo": 0.0}
_FLOATS: dict[str, dict[str, Any]] = {   # Checks.number's range of each float key
    "learning_rate": _POS,
    "weight_decay": _NONNEG,
    "dropout": {"lo": 0.0, "hi": 0.9},
    "grad_clip_thresh": _POS,
    "guided_attention_weight": _NONNEG,
    "gate_loss_weight": _NONNEG,
    "gate_threshold": {"lo": 0.0, "hi": 1.0, "lo_open": True, "hi_open": True},
    "gate_pos_weight": _POS,
    "min_lr_ratio": {"lo": 0.0, "hi": 1.0},
    "val_fraction": {"lo": 0.0, "hi": 0.5, "lo_open": True},
}
_INTS: dict[str, int] = {   # the least value of each integer key
    "batch_size": 1,
    "warmup_steps": 0,
    "lr_decay_steps": 1,
    "validation_interval": 1,
    "max_steps": 1,
    "split_seed": 0,
    "seed": 0,
    "max_nan_restores": 0,
    "batchnorm_refresh": 0,
    GENERATION_KEY: 0,
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "preset": ("tiny", "full"),
    "lr_schedule": ("exponential", "cosine", "constant"),
    "device": ("auto", "cpu", "cuda"),
    "amp": ("auto", "none", "bf16", "fp16"),
}
_FLAGS = ("reset_attention", "lr_restart", "tensorboard")
INTEGER_KEYS = frozenset(_INTS) | {"num_threads"}
NUMERIC_KEYS = frozenset(_FLOATS) | INTEGER_KEYS


@dataclass(frozen=True)
class TrainSettings:
    """The validated trial config. Field meanings: ``DEFAULTS``."""

    data_dir: Path
    cache_dir: Path | None
    preset: str
    model: dict[str, Any]
    learning_rate: float
    batch_size: int
    dropout: float
    weight_decay: float
    grad_clip_thresh: float
    guided_attention_weight: float
    gate_loss_weight: float
    gate_threshold: float
    gate_pos_weight: float
    warmup_steps: int
    lr_schedule: str
    lr_decay_steps: int
    min_lr_ratio: float
    validation_interval: int
    max_steps: int
    val_fraction: float
    split_seed: int
    seed: int
    device: str
    amp: str
    num_threads: int | None
    reset_attention: bool
    lr_restart: bool
    tensorboard: bool
    max_nan_restores: int
    batchnorm_refresh: int
    restart_generation: int
    inject: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], base_dir: Path | None = None) -> TrainSettings:
        """Merge ``config`` over ``DEFAULTS`` and check every known key.

        ``base_dir`` resolves a relative ``data_dir``/``cache_dir`` (default: the directory the
        sweep started in, ``TUNE_ORIG_WORKING_DIR``, else the current one).
        """
        merged = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
        values = {k: check_value(k, merged[k]) for k in DEFAULTS if k not in _PATHS}
        base = base_dir or Path(os.environ.get("TUNE_ORIG_WORKING_DIR", os.getcwd()))
        values["data_dir"] = _data_dir(merged["data_dir"], base)
        cache = merged["cache_dir"]
        values["cache_dir"] = None if cache is None else _resolve(Path(str(cache)), base)
        values["restart_generation"] = values.pop(GENERATION_KEY)
        return cls(**values)


_PATHS = ("data_dir", "cache_dir")


def check_value(key: str, value: Any) -> Any:
    """The checked value of the known key ``key`` (TrainConfigError naming key, value and what is
    allowed, in ``.allowed`` too); ``data_dir``/``cache_dir`` only by type (where they point is
    checked later)."""
    if key in _FLOATS:
        return _CHECK.number(key, value, **_FLOATS[key])
    if key in _INTS:
        return _CHECK.integer(key, value, _INTS[key], whole_floats=True)
    if key in _CHOICES:
        return str(_CHECK.choice(key, value, _CHOICES[key]))
    if key in _FLAGS:
        return _CHECK.flag(key, value)
    if key == "num_threads":
        return _CHECK.integer(key, value, 1, null=True, whole_floats=True)
    if key == "model":
        return dict(_CHECK.mapping("model", value, "a mapping of Tacotron2Config overrides"))
    if key == "inject":
        return _inject(value)
    if key in _PATHS:
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise _CHECK.fail(key, value, "a folder path", wrong_type=True)
        return value
    raise unknown_key(key)


def unknown_key(key: str, known: Iterable[str] | None = None, where: str = "",
                what: str = "train_tts config key") -> UserError:
    """``config.max_step: unknown train_tts config key 'max_step'; did you mean 'max_steps'?``
    (or the known names when none is close). ``where``: the field's prefix (``config.``)."""
    names = sorted(k for k in (DEFAULTS if known is None else known) if not k.startswith("_"))
    return _CHECK.unknown(f"{where}{key}", key, names, what)


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def _data_dir(value: Any, base: Path) -> Path:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise _CHECK.fail("data_dir", value, "a path to an LJSpeech-layout dataset", wrong_type=True)
    path = DEFAULT_CORPUS_DIR if value is None else _resolve(Path(value), base)
    if not (path / "metadata.csv").is_file():
        raise TrainConfigError(
            f"train_tts config key 'data_dir' = {str(path)!r} holds no LJSpeech-layout dataset "
            f"(no metadata.csv); build one with `smart-tuner corpus DIR` and set data_dir to DIR"
        )
    return path


def _inject(value: Any) -> dict[str, float]:
    value = _CHECK.mapping("inject", value, 'a mapping such as {"nan_at_step": 30}', null=True)
    out: dict[str, float] = {}
    for key, v in value.items():
        if key not in INJECT_KEYS:
            raise _CHECK.fail("inject", dict(value), "a mapping with keys " + ", ".join(sorted(INJECT_KEYS)))
        name = f"inject.{key}"
        if key == "explode_lr_threshold":
            out[key] = _CHECK.number(name, v, **_NONNEG)
        elif key in ("explode_factor", "lr_spike_factor"):
            out[key] = _CHECK.number(name, v, **_POS)
        elif key == "lr_spike_steps":
            out[key] = float(_CHECK.integer(name, v, 1, whole_floats=True))
        else:
            out[key] = float(_CHECK.integer(name, v, 0, whole_floats=True))
    return out
