"""Matplotlib figures for TensorBoard images and the failure-analysis report.

All figures use the non-interactive ``Agg`` backend, so they work on headless machines and inside
Ray workers. Functions take plain NumPy arrays (or lists of floats); nothing here imports torch.

NaN policy: non-finite values are drawn as they are (matplotlib leaves gaps for NaN; +-Inf points
are clipped to the axis by matplotlib). A curve that turns NaN is therefore visible as a curve that
stops, which is exactly the signal a reader looks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "plot_alignment",
    "plot_mel",
    "plot_gate",
    "fig_to_rgb",
    "plot_metric_curves",
]


def _as_2d(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}; pass one utterance")
    return arr


def _as_1d(name: str, a: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}; pass one utterance")
    return arr


def plot_alignment(alignment: np.ndarray, title: str = "alignment") -> Figure:
    """Attention alignment of one utterance.

    ``alignment`` is (T_dec, L): decoder steps x encoder steps. Drawn transposed so the x axis is the
    decoder step and the y axis the encoder step, origin lower: a healthy alignment is a diagonal
    rising from the bottom-left corner.
    """
    a = _as_2d("alignment", alignment)  # (T_dec, L)
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(a.T, aspect="auto", origin="lower", interpolation="none")  # (L, T_dec)
    fig.colorbar(im, ax=ax)
    ax.set_xlabel("decoder step")
    ax.set_ylabel("encoder step")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_mel(mel: np.ndarray, title: str = "mel", vmin: float | None = None,
             vmax: float | None = None) -> Figure:
    """Log-mel spectrogram of one utterance, ``mel`` is (n_mels, T); origin lower, colorbar.

    ``vmin``/``vmax`` fix the colour scale (pass the target's range to compare a prediction).
    """
    m = _as_2d("mel", mel)  # (n_mels, T)
    fig, ax = plt.subplots(figsize=(6, 3))
    im = ax.imshow(m, aspect="auto", origin="lower", interpolation="none", vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=ax)
    ax.set_xlabel("frame")
    ax.set_ylabel("mel channel")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_gate(gate_predicted: np.ndarray, gate_target: np.ndarray, title: str = "gate") -> Figure:
    """Stop-gate probability against its 0/1 target over the frames of one utterance, both (T,)."""
    pred = _as_1d("gate_predicted", gate_predicted)  # (T,)
    target = _as_1d("gate_target", gate_target)  # (T,)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.arange(target.shape[0]), target, color="tab:green", alpha=0.6, label="target")
    ax.plot(np.arange(pred.shape[0]), pred, color="tab:red", marker=".", markersize=2,
            linestyle="none", label="predicted")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("frame")
    ax.set_ylabel("stop probability")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def fig_to_rgb(fig: Figure, close: bool = True) -> np.ndarray:
    """Render a figure to an (H, W, 3) uint8 RGB array (and close it unless ``close=False``)."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())  # (H, W, 4) uint8
    rgb = np.ascontiguousarray(rgba[..., :3])  # (H, W, 3)
    if close:
        plt.close(fig)
    return rgb


def plot_metric_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    metric: str,
    markers: Mapping[str, Sequence[tuple[float, str]]] | None = None,
    threshold: float | None = None,
    log_y: bool = False,
    xlabel: str = "validation step",
) -> Figure:
    """One metric against validation step (or ``xlabel``'s quantity), one line per trial.

    ``curves`` maps trial id -> (steps, values). ``markers`` maps trial id -> [(step, label)]: each
    intervention is drawn as a dashed vertical line in the trial's colour with its label (the action).
    ``threshold`` draws a horizontal dotted line (the rule's threshold). ``log_y`` uses a log axis
    (grad norms span several decades; values <= 0 are not drawn on it).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (trial, (steps, values)) in enumerate(sorted(curves.items())):
        color = f"C{i % 10}"
        ax.plot(np.asarray(steps, dtype=float), np.asarray(values, dtype=float),
                color=color, marker="o", markersize=3, label=trial)
        for step, label in (markers or {}).get(trial, ()):
            ax.axvline(float(step), color=color, linestyle="--", alpha=0.7)
            ax.annotate(label, (float(step), 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color=color)
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle=":", label=f"threshold {threshold:g}")
    if log_y:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(metric)
    if curves:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
