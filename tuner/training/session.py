"""The seam between the training loop and Ray Tune.

The loop talks to a ``TrialSession`` only: ``RaySession`` forwards to ``ray.tune.report`` /
``ray.tune.get_checkpoint`` / the trial context; ``LocalSession`` runs the same loop without Ray
(tests, benchmarks): it keeps every report and copies every checkpoint into its own folder, and
can be primed with a checkpoint folder to resume from.

Both claim the trial folder for the attempt that runs (``claim_attempt``) and refuse to report
once a newer attempt owns it (``check_attempt``): one writer per trial folder
(tuner/training/attempts.py). Ray: the trial folder on Ray's storage filesystem; local: ``root``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from tuner.training import attempts

__all__ = ["TrialSession", "RaySession", "LocalSession"]


class TrialSession(Protocol):
    """What ``train_tts`` needs from the system that runs it."""

    def checkpoint_dir(self) -> Iterator[Path | None]:
        """Context manager: a folder holding the checkpoint to resume from, or None."""
        ...

    def report(self, metrics: Mapping[str, float], checkpoint_dir: Path) -> None:
        """Report ``metrics`` with the checkpoint written in ``checkpoint_dir`` (may be deleted after)."""
        ...

    def trial_dir(self) -> Path:
        """The trial's own folder (TensorBoard files go here)."""
        ...

    def num_cpus(self) -> int | None:
        """CPUs reserved for the trial, or None when unknown."""
        ...

    def claim_attempt(self) -> int:
        """Make this run the owner of the trial folder; its attempt number (1, 2, ...)."""
        ...

    def check_attempt(self, attempt: int) -> None:
        """Raise ``attempts.SupersededAttemptError`` when a newer attempt owns the folder."""
        ...


class RaySession:
    """``TrialSession`` over the Ray Tune function-trainable API (call inside a trial)."""

    @contextmanager
    def checkpoint_dir(self) -> Iterator[Path | None]:
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def report(self, metrics: Mapping[str, float], checkpoint_dir: Path) -> None:
        from ray import tune

        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))

    def trial_dir(self) -> Path:
        from ray import tune

        return Path(tune.get_context().get_trial_dir())

    def num_cpus(self) -> int | None:
        from ray import tune

        cpus = tune.get_context().get_trial_resources().required_resources.get("CPU")
        return max(1, int(cpus)) if cpus else None

    @staticmethod
    def _trial_folder() -> tuple[object, str]:
        """(pyarrow filesystem, trial folder path on it): where Ray persists the checkpoints."""
        from tuner.raytune._ray_compat import trial_folder

        return trial_folder()

    def claim_attempt(self) -> int:
        return attempts.claim(*self._trial_folder())

    def check_attempt(self, attempt: int) -> None:
        attempts.check(*self._trial_folder(), attempt)


class LocalSession:
    """``TrialSession`` without Ray: reports go to ``self.reports``, checkpoints to ``root``.

    Checkpoint ``i`` (0-based, one per report) is copied to ``root/checkpoint_{i:04d}``;
    ``resume_from`` is the folder to restore from (e.g. one of those), or None.
    ``on_report`` is called with each metrics dict (benchmarks use it to stop early by raising).
    """

    def __init__(
        self,
        root: str | Path,
        resume_from: str | Path | None = None,
        num_cpus: int | None = None,
        on_report: Callable[[dict[str, float], Path], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.resume_from = None if resume_from is None else Path(resume_from)
        self.reports: list[dict[str, float]] = []
        self.checkpoints: list[Path] = []
        self._num_cpus = num_cpus
        self._on_report = on_report

    @contextmanager
    def checkpoint_dir(self) -> Iterator[Path | None]:
        yield self.resume_from

    def report(self, metrics: Mapping[str, float], checkpoint_dir: Path) -> None:
        target = self.root / f"checkpoint_{len(self.checkpoints):04d}"
        shutil.copytree(checkpoint_dir, target, dirs_exist_ok=True)
        self.reports.append(dict(metrics))
        self.checkpoints.append(target)
        if self._on_report is not None:
            self._on_report(dict(metrics), target)

    def trial_dir(self) -> Path:
        return self.root

    def num_cpus(self) -> int | None:
        return self._num_cpus

    def claim_attempt(self) -> int:
        from pyarrow.fs import LocalFileSystem

        return attempts.claim(LocalFileSystem(), str(self.root.resolve()))

    def check_attempt(self, attempt: int) -> None:
        from pyarrow.fs import LocalFileSystem

        attempts.check(LocalFileSystem(), str(self.root.resolve()), attempt)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for one checkpoint, removed after the report."""
    with tempfile.TemporaryDirectory(prefix="smart-tuner-ckpt-") as folder:
        yield Path(folder)
