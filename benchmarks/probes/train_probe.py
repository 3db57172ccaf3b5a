"""Does a Tacotron2 preset learn to align? A plain training loop (no Ray) that measures it.

Trains on an LJSpeech-layout corpus (default: the built-in one at data/corpus) and validates every
``--val-every`` steps with teacher forcing on the whole validation split. Stops when
``validation attention_score >= --target`` (then trains ``--extra`` more validations) or at the
step/time budget. Writes the alignment image of the first validation utterance and a JSON summary.

    .venv/bin/python benchmarks/probes/train_probe.py --preset tiny --threads 2

Reports: steps/s, wall seconds and steps until alignment, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

import torch

from model.data import load_features, make_loader, split_indices
from model.loss import Tacotron2Loss
from model.metrics import attention_score, diagonality, early_stop_fraction, gate_accuracy
from model.tacotron2 import Tacotron2, Tacotron2Config

RESULTS = Path(__file__).resolve().parents[1] / "results"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/corpus")
    p.add_argument("--preset", default="tiny", choices=["tiny", "full"])
    p.add_argument("--model", default="{}", help='JSON Tacotron2Config overrides, e.g. {"n_frames_per_step": 3}')
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-6)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ga-weight", type=float, default=1.5, help="guided_attention_weight")
    p.add_argument("--gate-pos-weight", type=float, default=5.0)
    p.add_argument("--val-every", type=int, default=25)
    p.add_argument("--target", type=float, default=0.5)
    p.add_argument("--extra", type=int, default=0, help="validations to keep training after the target")
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--max-minutes", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="tiny", help="suffix of the result files")
    p.add_argument("--snapshots", action="store_true", help="also write the latest alignment at every validation")
    return p.parse_args()


@torch.no_grad()
def validate(model: Tacotron2, loader, loss_fn: Tacotron2Loss, r: int) -> tuple[dict[str, float], torch.Tensor]:
    """Teacher-forced validation: mean loss terms and metrics over all batches; first alignment."""
    model.eval()
    sums: dict[str, float] = {}
    first = None
    for n, batch in enumerate(loader, start=1):
        out = model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
        terms = loss_fn(out, batch)
        row = {"loss": terms.total.item(), "mel": terms.mel_postnet.item(), "gate": terms.gate.item(),
               "attention_score": attention_score(out.alignments, batch.text_lengths, batch.mel_lengths, r),
               "diagonality": diagonality(out.alignments, batch.text_lengths, batch.mel_lengths, r),
               "gate_accuracy": gate_accuracy(out.gate_logits, batch.mel_lengths),
               "early_stop": early_stop_fraction(out.gate_logits, batch.mel_lengths)}
        sums = {k: sums.get(k, 0.0) + v for k, v in row.items()}
        if first is None:
            n_steps = math.ceil(int(batch.mel_lengths[0]) / r)
            first = out.alignments[0, :n_steps, : int(batch.text_lengths[0])]
    model.train()
    return {k: v / n for k, v in sums.items()}, first


def save_alignment(alignment: torch.Tensor, path: Path, title: str) -> None:
    """The alignment picture TensorBoard shows (tuner.reporting.plots.plot_alignment), saved as a PNG."""
    import matplotlib.pyplot as plt

    from tuner.reporting.plots import plot_alignment

    fig = plot_alignment(alignment.numpy(), title=title)  # (T_dec, L)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    features = load_features(args.data)
    cfg = Tacotron2Config.preset(args.preset, len(features.symbols), **json.loads(args.model))
    r = cfg.n_frames_per_step
    train_idx, val_idx = split_indices(len(features.ids))
    train = make_loader(features, train_idx, args.batch_size, r, shuffle=True, seed=args.seed)
    val = make_loader(features, val_idx, 32, r, shuffle=False)
    model = Tacotron2(cfg)
    loss_fn = Tacotron2Loss(gate_pos_weight=args.gate_pos_weight, guided_attention_weight=args.ga_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.preset}: {n_params / 1e6:.2f}M parameters, r={r}, {len(train_idx)} train / {len(val_idx)} val, "
          f"batch {args.batch_size}, lr {args.lr}, ga {args.ga_weight}, clip {args.grad_clip}", flush=True)

    step, start, aligned_at, extra_left, history = 0, time.perf_counter(), None, args.extra, []
    cpu_start = time.process_time()  # CPU seconds / threads ~ wall time on otherwise idle cores
    train_seconds, frames = 0.0, 0
    while step < args.max_steps and (time.perf_counter() - start) < args.max_minutes * 60:
        for batch in train:
            t0 = time.perf_counter()
            out = model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
            terms = loss_fn(out, batch)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
            optimizer.step()
            train_seconds += time.perf_counter() - t0
            frames += int(batch.mel_lengths.sum())
            step += 1
            if step % args.val_every:
                continue
            metrics, alignment = validate(model, val, loss_fn, r)
            wall = time.perf_counter() - start
            row = {"step": step, "wall_s": round(wall, 1), "cpu_s": round(time.process_time() - cpu_start, 1),
                   "train_loss": round(terms.total.item(), 4), "grad_norm": round(grad_norm, 3),
                   **{k: round(v, 4) for k, v in metrics.items()}}
            history.append(row)
            print(json.dumps(row), flush=True)
            if args.snapshots:
                save_alignment(alignment, RESULTS / f"alignment_{args.tag}_latest.png",
                               f"step {step}: attention_score {metrics['attention_score']:.2f}")
            if aligned_at is None and metrics["attention_score"] >= args.target:
                aligned_at = row
                save_alignment(alignment, RESULTS / f"alignment_{args.tag}.png",
                               f"{args.preset} r={r}: step {step}, {wall:.0f} s, "
                               f"attention_score {metrics['attention_score']:.2f}")
            elif aligned_at is not None:
                extra_left -= 1
            if aligned_at is not None and extra_left <= 0:
                break
            if step >= args.max_steps or wall >= args.max_minutes * 60:
                break
        if aligned_at is not None and extra_left <= 0:
            break
    if aligned_at is None:
        save_alignment(alignment, RESULTS / f"alignment_{args.tag}.png",
                       f"{args.preset} r={r}: NOT aligned after {step} steps")
    summary = {"args": vars(args), "config": vars(cfg), "parameters": n_params,
               "train_steps_per_s": round(step / train_seconds, 3),
               "train_mel_frames_per_s": round(frames / train_seconds, 1),
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "aligned_at": aligned_at, "history": history}
    (RESULTS / f"train_probe_{args.tag}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("train_steps_per_s", "train_mel_frames_per_s", "peak_rss_mib",
                                                "aligned_at")}), flush=True)


if __name__ == "__main__":
    main()
