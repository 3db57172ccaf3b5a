"""Experiment tracking: TensorBoard event files per trial and MLflow runs per trial.

``TrialBoard`` is used inside ``train_tts`` (one per trial folder). ``MLflowCallback`` lives in
``tuner/reporting/mlflow_callback.py`` (it imports Ray and MLflow), so this module stays light inside a trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tuner.contract import numeric
from tuner.reporting.plots import fig_to_rgb, plot_alignment, plot_gate, plot_mel

__all__ = ["TrialBoard"]


class TrialBoard:
    """TensorBoard event files in one trial folder.

    Scalars are written under their metric names (``grad.norm``, ``validation.loss``...).
    ``log_validation`` writes three images per validation: ``validation/alignment``,
    ``validation/mel`` (target above prediction) and ``validation/gate``; with ``image_dir`` also
    as ``step_<N>_{alignment,mel,gate}.png`` files there (the MLflow callback logs them).
    NaN policy: non-finite scalars are written as they are (TensorBoard shows them as gaps/NaN).
    """

    def __init__(self, log_dir: str | Path, image_dir: str | Path | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.image_dir = None if image_dir is None else Path(image_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write every numeric metric as a scalar at ``step``; non-numeric values are skipped."""
        for name, value in numeric(metrics).items():
            self._writer.add_scalar(name, value, global_step=int(step))
        self._writer.flush()

    def log_validation(
        self,
        step: int,
        alignment: np.ndarray,
        mel_target: np.ndarray,
        mel_predicted: np.ndarray,
        gate_predicted: np.ndarray,
        gate_target: np.ndarray,
    ) -> None:
        """Write alignment (T_dec, L), target/predicted mels (n_mels, T) and gate (T,) images."""
        step = int(step)
        align_img = fig_to_rgb(plot_alignment(alignment, title=f"alignment, step {step}"))
        target = np.asarray(mel_target, dtype=np.float32)  # (n_mels, T)
        finite = target[np.isfinite(target)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
        target_img = fig_to_rgb(plot_mel(target, title="target mel", vmin=lo, vmax=hi))
        pred_img = fig_to_rgb(plot_mel(mel_predicted, title="predicted mel (target's colour scale)",
                                       vmin=lo, vmax=hi))
        width = min(target_img.shape[1], pred_img.shape[1])
        mel_img = np.concatenate([target_img[:, :width], pred_img[:, :width]], axis=0)  # (2H, W, 3)
        gate_img = fig_to_rgb(plot_gate(gate_predicted, gate_target, title=f"gate, step {step}"))
        self._writer.add_image("validation/alignment", align_img, step, dataformats="HWC")
        self._writer.add_image("validation/mel", mel_img, step, dataformats="HWC")
        self._writer.add_image("validation/gate", gate_img, step, dataformats="HWC")
        self._writer.flush()
        if self.image_dir is not None:  # PNG copies for MLflow (tuner/reporting/mlflow_callback.py)
            import matplotlib.image

            self.image_dir.mkdir(parents=True, exist_ok=True)
            for kind, img in (("alignment", align_img), ("mel", mel_img), ("gate", gate_img)):
                matplotlib.image.imsave(self.image_dir / f"step_{step:06d}_{kind}.png", img)

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()

    def __enter__(self) -> TrialBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

