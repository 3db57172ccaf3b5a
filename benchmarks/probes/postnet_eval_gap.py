"""Why overfitting.gap is large on young trials: validation loss of a demo checkpoint with the model in
eval mode, with only BatchNorm in training mode (batch statistics), fully in training mode, and in
eval mode after re-estimating BatchNorm's running statistics on 256 training utterances with the
checkpoint's weights (with and without dropout active while re-estimating).
Usage: python benchmarks/probes/postnet_eval_gap.py TRIAL_DIR [CHECKPOINT_NAME] [DATA_DIR]
(the figures in BENCHMARKS.md: a demo trial folder, checkpoint_000007, data/corpus)."""
import json, sys, torch
from tuner.training.checkpoint import load_checkpoint
from model.data import load_features, split_indices, make_loader
from model.tacotron2 import Tacotron2, Tacotron2Config
from model.loss import Tacotron2Loss
torch.set_num_threads(1)
if len(sys.argv) < 2:
    sys.exit("usage: python benchmarks/probes/postnet_eval_gap.py TRIAL_DIR [CHECKPOINT_NAME] [DATA_DIR]")
d = sys.argv[1]
checkpoint_name = sys.argv[2] if len(sys.argv) > 2 else "checkpoint_000007"
data_dir = sys.argv[3] if len(sys.argv) > 3 else "data/corpus"
st = load_checkpoint(f"{d}/{checkpoint_name}")

feats = load_features(data_dir)
tr, va = split_indices(len(feats.ids), 0.05, 1234)
cfg = Tacotron2Config.preset("tiny", n_symbols=len(feats.symbols))
m = Tacotron2(cfg); m.load_state_dict(st["model"])
params = json.load(open(d + "/params.json")); m.set_dropout(params["dropout"])
loss = Tacotron2Loss(guided_attention_weight=params["guided_attention_weight"])
loader = make_loader(feats, va, 16, cfg.n_frames_per_step, shuffle=False)
trl = make_loader(feats, tr[:64], 16, cfg.n_frames_per_step, shuffle=False)
def run(mode, ld):
    m.eval()
    if mode == "bn_train":
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d): mod.train()
    if mode == "train": m.train()
    tot = []
    with torch.no_grad():
        for b in ld:
            t = loss(m(b.text, b.text_lengths, b.mels, b.mel_lengths), b)
            tot.append((float(t.mel), float(t.mel_postnet)))
    return [round(sum(x)/len(x),3) for x in zip(*tot)]
for mode in ["eval", "bn_train", "train"]:
    print(mode, "val", run(mode, loader), "train-subset", run(mode, trl))


def reestimate(with_dropout: bool) -> None:
    """Running statistics recomputed (cumulative average) from training batches, current weights."""
    m.load_state_dict(st["model"])
    m.set_dropout(params["dropout"])
    m.train() if with_dropout else m.eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.reset_running_stats()
            mod.momentum = None
            mod.train()
    with torch.no_grad():
        for b in make_loader(feats, tr[:256], 16, cfg.n_frames_per_step, shuffle=False):
            m(b.text, b.text_lengths, b.mels, b.mel_lengths)


for with_dropout in (True, False):
    reestimate(with_dropout)
    print(f"eval after re-estimating running stats (dropout {'on' if with_dropout else 'off'})",
          "val", run("eval", loader), "train-subset", run("eval", trl))
