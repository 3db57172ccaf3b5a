"""The training loop inside one trial: build, restore, train, validate, report, checkpoint.

Per step (``step`` counts optimizer steps from the last fresh start):
1. ``lr = schedule.lr(learning_rate, step)`` on every param group;
2. forward + ``Tacotron2Loss`` under autocast (``amp`` bf16/fp16 on CUDA or CPU; ``auto`` = bf16 on
   CUDA, none on CPU), backward (GradScaler for fp16);
3. ``grad.norm`` = the pre-clip norm returned by ``clip_grad_norm_(params, grad_clip_thresh)``;
4. a non-finite loss or norm skips the step (``zero_grad``, no optimizer step, ``nan_skips`` + 1,
   ``training.skipped_steps`` + 1); with fp16, a finite loss whose scaled gradients overflowed is
   GradScaler's routine loss-scale overflow (the scale is lowered): skipped and counted in
   ``training.overflow_steps`` too, which the explosion rule does not count against the trial;
5. non-finite parameters after the step -> model, optimizer and scaler go back to the last
   checkpoint in-process (``restored_from_nan`` + 1; step count, data position and RNGs go on, so
   the same batch is not replayed); more than ``max_nan_restores`` between two reports fails
   the trial with ``NonFiniteParametersError``.
Every ``validation_interval`` steps (and at ``max_steps``): re-estimate BatchNorm's running
statistics on ``batchnorm_refresh`` fixed training utterances (evaluate.refresh_batchnorm), validate,
checkpoint, report.

Restore: the checkpoint's state is loaded, then the trial's *current* config is applied (LR via
the schedule, weight decay on the param groups, dropout, loss weights, gate threshold, clip
threshold, batch size). ``reset_attention`` / ``lr_restart`` act when the config differs from
the one the checkpoint was saved under (a scheduler mutation), so a plain resume does not repeat
them. A checkpoint of an older ``_restart_generation`` is ignored: fresh start with seed +
generation, and ``validation.step`` counts from 0 again (so a restart shows as the count going back,
as a rollback does; ``restart_generation`` is reported too). A checkpoint that cannot be read: the
newest readable older one is restored (one line on stderr), and the next report names both folders
(``checkpoint.unreadable``, ``checkpoint.restored``, ``checkpoint.restored_step``; tuner/contract.py).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from model.data import load_features, make_loader, split_indices
from model.loss import Tacotron2Loss
from model.tacotron2 import Tacotron2, Tacotron2Config
from tuner.contract import CHECKPOINT_RESTORED, CHECKPOINT_RESTORED_STEP, CHECKPOINT_UNREADABLE
from tuner.training.batches import EpochBatches, isolated_rng
from tuner.training.checkpoint import (FORMAT, capture_rng, from_bytes, load_readable_checkpoint,
                                       restore_rng)
from tuner.training.evaluate import ValidationSample, refresh_batchnorm, validate
from tuner.training.faults import FIRED_FILE, FaultInjector
from tuner.training.helpers import (
    NonFiniteParametersError, config_fingerprint, resolve_device, seed_all, update_best,
)
from tuner.training.reporting import Reporter
from tuner.training.schedule import LRSchedule
from tuner.training.session import TrialSession
from tuner.training.settings import TrainConfigError, TrainSettings
from tuner.training.stats import IntervalStats

__all__ = ["Trainer", "NonFiniteParametersError", "config_fingerprint"]


class Trainer:
    """One trial's training: ``Trainer(settings, session, config).run()``."""

    def __init__(self, settings: TrainSettings, session: TrialSession, config: Mapping[str, Any]) -> None:
        self.s = settings
        self.session = session
        self.fingerprint = config_fingerprint(config)
        threads = settings.num_threads or session.num_cpus()
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(settings.device)
        self.amp = settings.amp
        if self.amp == "auto":  # bf16 where it pays (CUDA), full precision on CPU
            self.amp = "bf16" if self.device.type == "cuda" else "none"
        if self.amp == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            self.amp = "fp16"
        self.features = load_features(settings.data_dir, cache_dir=settings.cache_dir)
        self.train_idx, self.val_idx = split_indices(
            len(self.features.ids), settings.val_fraction, settings.split_seed
        )
        self.step = self.validation_step = self.nan_skips = self.restored_from_nan = 0
        self.restores_since_report = 0
        self.best: dict[str, float] = {}
        self.initial_learning_rate = settings.learning_rate
        self.last_sample: ValidationSample | None = None
        self.last_metrics: dict[str, float] = {}
        self.fallback: dict[str, str | float] = {}  # the checkpoint fallback, told with the next report
        self.attempt = 0  # claimed in setup(): this run's number among the trial's attempts
        self.ready = False  # setup() done

    # ---------------------------------------------------------------- build / restore
    def _build(self, seed: int) -> None:
        seed_all(seed)
        overrides = {"n_mels": self.features.audio.n_mels, **self.s.model}
        cfg = Tacotron2Config.preset(self.s.preset, n_symbols=len(self.features.symbols), **overrides)
        self.model = Tacotron2(cfg).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.s.learning_rate, weight_decay=self.s.weight_decay
        )
        self.criterion = Tacotron2Loss()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.schedule = LRSchedule(
            self.s.lr_schedule, self.s.warmup_steps, self.s.lr_decay_steps, self.s.min_lr_ratio
        )
        self.batches = EpochBatches(
            self.features, self.train_idx, self.s.batch_size, cfg.n_frames_per_step, seed
        )

    def _load(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:  # sizes differ: the config's preset/model changed
            raise TrainConfigError(
                f"train_tts config keys 'preset'/'model' = {self.s.preset!r}/{self.s.model!r} do not match "
                f"the checkpoint's model ({str(err).splitlines()[1].strip()}); raise _restart_generation "
                f"to train the new architecture from scratch"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.schedule.load_state_dict(state["schedule"])
        self.step = int(state["step"])
        self.nan_skips, self.restored_from_nan = int(state["nan_skips"]), int(state["restored_from_nan"])
        self.initial_learning_rate = float(state["initial_learning_rate"])
        self.best = dict(state["best"])
        if int(state["batch_size"]) == self.s.batch_size:
            self.batches.seek(state["epoch"], state["batch_in_epoch"])
        else:  # a new batch size: the old position means nothing in the new order
            self.batches.seek(int(state["epoch"]) + 1, 0)
        restore_rng(state["rng"])
        if state["config_fingerprint"] != self.fingerprint:  # resumed under a mutated config
            if self.s.reset_attention:
                self._reset_attention()
            if self.s.lr_restart:
                self.schedule.restart(self.step)

    def _reset_attention(self) -> None:
        """``model.reset_attention()``, and fresh AdamW moments for the weights it re-initialised."""
        before = [p.detach().clone() for p in self.model.parameters()]
        self.model.reset_attention()
        for p, old in zip(self.model.parameters(), before):
            if not torch.equal(p.detach(), old):
                self.optimizer.state.pop(p, None)

    def _apply_config(self) -> None:
        """The trial's current hyperparameters onto model, optimizer and loss."""
        self.model.set_dropout(self.s.dropout)
        self.model.cfg.gate_threshold = self.s.gate_threshold  # inference stops at this gate probability
        for group in self.optimizer.param_groups:
            group["weight_decay"] = self.s.weight_decay
            group["lr"] = self.schedule.lr(self.s.learning_rate, self.step)
        self.criterion.gate_pos_weight = self.s.gate_pos_weight
        self.criterion.gate_loss_weight = self.s.gate_loss_weight
        self.criterion.guided_attention_weight = self.s.guided_attention_weight
        self.faults = FaultInjector(self.s.inject, self.s.learning_rate, self.initial_learning_rate,
                                    frozenset(self._fired_faults()))

    def _fired_faults(self) -> set[str]:
        """One-shot injected faults this trial already had (faults.py; kept in its folder)."""
        if not self.s.inject:
            return set()
        path = Path(self.session.trial_dir()) / FIRED_FILE
        try:
            return set(json.loads(path.read_text()))
        except (OSError, ValueError):
            return set()

    def _record_fired(self, keys: set[str]) -> None:
        path = Path(self.session.trial_dir()) / FIRED_FILE
        path.write_text(json.dumps(sorted(self._fired_faults() | keys)))
        self.faults = replace(self.faults, fired=self.faults.fired | keys)

    def setup(self) -> None:
        """Build everything and restore from the session's checkpoint when it is usable."""
        self.attempt = self.session.claim_attempt()   # one writer per trial folder (attempts.py)
        with self.session.checkpoint_dir() as folder:   # unreadable: the newest older readable one
            state, read = load_readable_checkpoint(folder) if folder is not None else (None, None)
        if state is not None and int(state["restart_generation"]) < self.s.restart_generation:
            state = None  # a restart from scratch: every count starts again
        seed = self.s.seed + self.s.restart_generation
        self._build(seed)
        if state is not None:
            self._load(state)
            self.validation_step = int(state["validation_step"])
            if read != Path(folder):
                self.fallback = {CHECKPOINT_UNREADABLE: str(folder), CHECKPOINT_RESTORED: str(read),
                                 CHECKPOINT_RESTORED_STEP: float(self.validation_step)}
        self._apply_config()
        with isolated_rng(seed):
            loader = make_loader(self.features, self.val_idx, self.s.batch_size,
                                 self.model.cfg.n_frames_per_step, shuffle=False, seed=seed)
            self.val_batches = list(loader)
            self.refresh_batches = self._refresh_batches(seed)
        self.reporter = Reporter(self.session, self.s.tensorboard, self.attempt)
        self.last_good = self.reporter.encode(self.state_dict())
        self.ready = True

    def _refresh_batches(self, seed: int) -> list[Any]:
        """The fixed training batches BatchNorm's statistics are re-estimated on before validation:
        ``batchnorm_refresh`` training utterances drawn once with the trial's seed."""
        n = min(self.s.batchnorm_refresh, len(self.train_idx))
        if n == 0:
            return []
        pick = torch.randperm(len(self.train_idx), generator=torch.Generator().manual_seed(seed))[:n]
        idx = sorted(self.train_idx[int(i)] for i in pick)
        return list(make_loader(self.features, idx, self.s.batch_size, self.model.cfg.n_frames_per_step,
                                shuffle=False, seed=seed))

    # ---------------------------------------------------------------- steps
    def _autocast(self) -> AbstractContextManager:
        if self.amp == "none":
            return nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, batch: Any) -> tuple[dict[str, float], float, bool, bool]:
        """One optimizer step (or a skipped one). Returns loss terms, the pre-clip grad norm,
        whether the step was skipped and whether that was a GradScaler loss-scale overflow."""
        number = self.step + 1  # the fault injector's 1-based step number
        fired = self.faults.firing(number)
        lr = self.schedule.lr(self.s.learning_rate, self.step) * self.faults.lr_factor(number)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = batch.to(self.device)
        self.model.train()
        with self._autocast():
            out = self.model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
            terms = self.criterion(out, batch)
        loss = terms.total * self.faults.loss_factor(number)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        factor = self.faults.grad_factor(number)
        params = [p for p in self.model.parameters() if p.grad is not None]
        if factor != 1.0:
            for p in params:
                p.grad.mul_(factor)
        norm = float(torch.nn.utils.clip_grad_norm_(params, self.s.grad_clip_thresh))
        values = {"total": float(loss.detach()), **{k: float(getattr(terms, k).detach()) for k in
                                           ("mel", "mel_postnet", "gate", "guided_attention")}}
        skipped = not (math.isfinite(values["total"]) and math.isfinite(norm))
        overflow = skipped and self.scaler.is_enabled() and math.isfinite(values["total"])
        if not skipped:
            self.scaler.step(self.optimizer)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.nan_skips += 1
        self.scaler.update()  # after an overflow: the scale is lowered (unscale_ saw the inf)
        if self.faults.corrupt_params(number):
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = math.nan
        if fired:
            self._record_fired(fired)
        self.step += 1
        return values, norm, skipped, overflow

    def params_finite(self) -> bool:
        norms = [torch.linalg.vector_norm(p.detach().float()) for p in self.model.parameters()]
        return bool(torch.isfinite(torch.stack(norms).sum()))

    def restore_after_nan(self) -> None:
        """Model, optimizer and scaler back to the last checkpoint (step, data and RNGs go on)."""
        self.restored_from_nan += 1
        self.restores_since_report += 1
        if self.restores_since_report > self.s.max_nan_restores:
            raise NonFiniteParametersError(
                f"parameters became non-finite {self.restores_since_report} times since the last "
                f"report at training step {self.step} (max_nan_restores={self.s.max_nan_restores}); "
                f"lower learning_rate or grad_clip_thresh"
            )
        state = from_bytes(self.last_good)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self._apply_config()

    # ---------------------------------------------------------------- reports
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict (tensors and plain types; see tuner/training/checkpoint.py)."""
        return {
            "format": FORMAT, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "schedule": self.schedule.state_dict(),
            "step": self.step, "validation_step": self.validation_step, "epoch": self.batches.epoch,
            "batch_in_epoch": self.batches.batch_in_epoch, "batch_size": self.s.batch_size,
            "restart_generation": self.s.restart_generation, "nan_skips": self.nan_skips,
            "restored_from_nan": self.restored_from_nan, "initial_learning_rate": self.initial_learning_rate,
            "best": dict(self.best), "rng": capture_rng(), "config_fingerprint": self.fingerprint,
            "attempt": self.attempt,
        }

    def validate_and_report(self, stats: IntervalStats) -> dict[str, float]:
        """Validate, then report the interval's metrics with a fresh checkpoint."""
        start = time.perf_counter()
        with isolated_rng(self.s.seed):
            refresh_batchnorm(self.model, self.refresh_batches, self.device, self._autocast)
            val, self.last_sample = validate(self.model, self.criterion, self.val_batches, self.device,
                                             self._autocast, self.s.gate_threshold)
        self.validation_step += 1
        metrics = {**stats.summary(), **val, "validation.seconds": time.perf_counter() - start}
        metrics["overfitting.gap"] = metrics["validation.loss"] - metrics["training.loss"]
        update_best(self.best, metrics)
        metrics.update({
            "validation.step": float(self.validation_step), "training.step": float(self.step),
            "learning_rate": float(self.optimizer.param_groups[0]["lr"]),
            "nan_skips": float(self.nan_skips), "restored_from_nan": float(self.restored_from_nan),
            "epoch": float(self.batches.epoch), "restart_generation": float(self.s.restart_generation),
            "num_threads": float(torch.get_num_threads()),
            **{f"best.{k}": v for k, v in self.best.items()},
        })
        self.last_metrics = metrics = {k: float(v) for k, v in metrics.items()}
        self.last_good = self.reporter.report(self.step, {**metrics, **self.fallback},
                                              self.state_dict(), self.last_sample)
        self.fallback = {}
        self.restores_since_report = 0
        return metrics

    def run(self) -> None:
        """``setup()`` (unless done), then train to ``max_steps``; report every ``validation_interval``."""
        if not self.ready:
            self.setup()
        try:
            stats = IntervalStats()
            batches = iter(self.batches)
            while self.step < self.s.max_steps:
                start = time.perf_counter()
                terms, norm, skipped, overflow = self.train_step(next(batches))
                stats.add(terms, norm, time.perf_counter() - start, skipped, overflow)
                if not self.params_finite():
                    self.restore_after_nan()
                if self.step % self.s.validation_interval == 0 or self.step == self.s.max_steps:
                    self.validate_and_report(stats)
                    stats.reset()
        finally:
            self.reporter.close()
