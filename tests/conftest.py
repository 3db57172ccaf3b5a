"""Shared fixtures: a small real corpus built with eSpeak NG, and its cached features.

``corpus_dir``: 24 utterances (seed 1) in LJSpeech layout, built once per test session.
``features``: ``load_features(corpus_dir)`` with the cache in a separate temporary folder.
Model imports are lazy so test files that need neither fixture do not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Every Ray the tests start is their own: ray.init() without an address joins the cluster named
# in /tmp/ray/ray_current_cluster, which any Ray cluster_utils.Cluster or `ray start` on the
# machine writes (tests/test_cluster.py does, maybe in another session), and then refuses
# num_cpus. Tests that want a cluster pass RAY_ADDRESS to their subprocess explicitly.
os.environ["RAY_ADDRESS"] = "local"
# Ray's memory monitor kills the newest worker once the *machine* is 95% full, which on a shared
# machine is other people's jobs: a test trial then errors for nothing it did (seen on the
# 24 GiB machine: "2 worker(s) were killed due to the node running low on memory", 21.5 GB used,
# most of it by other sessions' jobs). The kernel's OOM killer still guards the machine.
os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")

if TYPE_CHECKING:
    from model.data import FeatureSet


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-utterance built-in corpus (read-only by convention: copy it before breaking it)."""
    from model.corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("corpus") / "corpus", n_utterances=24, seed=1,
                        progress=False)


@pytest.fixture(scope="session")
def features(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureSet:
    """The mel features of ``corpus_dir`` (English symbols, default AudioConfig)."""
    from model.data import load_features

    return load_features(corpus_dir, cache_dir=tmp_path_factory.mktemp("features"))
