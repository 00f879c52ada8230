"""The generic Trainer: checkpoints, resume after a real SIGKILL, refusal of a changed config,
divergence guard, early stopping through any strategy."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrec.data import SequenceData
from seqrec.exceptions import ConfigError, DivergenceError
from seqrec.models.base import model_state
from seqrec.train import (
    TrainConfig,
    Trainer,
    join_state,
    read_state_dir,
    split_state,
    write_state_dir,
)

# A run long enough (a few seconds an epoch on 2 cores) that a kill lands inside an epoch.
SCRIPT = textwrap.dedent(
    """
    import sys, json
    import torch
    torch.set_num_threads(1)
    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.models import GRU4RecConfig
    from seqrec.models.gru4rec import ObjectiveConfig
    from seqrec.recommender import Recommender
    from seqrec.train import TrainConfig
    import polars as pl

    df = synthetic_sessions(n_sessions=6000, n_items=300, seed=1)
    ids = df["session_id"].unique().sort()
    valid = df.filter(pl.col("session_id").is_in(ids[-300:].implode()))
    train = df.filter(~pl.col("session_id").is_in(ids[-300:].implode()))
    rec = Recommender(
        GRU4RecConfig(layers=[64], dropout_hidden=0.2),
        ObjectiveConfig(n_sample=128),
        TrainConfig(epochs=int(sys.argv[2]), batch_size=16, momentum=0.3, patience=5,
                    progress=False, device="cpu"),
        seed=7,
    )
    ckpt = sys.argv[1] if sys.argv[1] != "-" else None
    rec.fit(train, valid, checkpoint_dir=ckpt, resume=sys.argv[3] == "resume")
    print(json.dumps({
        "valid": rec.evaluate(valid).metrics,
        "history": [[h.epoch, h.loss, h.valid] for h in rec.history_],
    }))
    """
)


def _run(*args: str, wait: bool = True) -> subprocess.Popen | dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    if not wait:
        return p
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_result(tmp_path):
    ckpt = tmp_path / "run"
    p = _run(str(ckpt), "3", "fresh", wait=False)
    state = ckpt / "checkpoint" / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists(), "no checkpoint after the first epoch"
    epoch_done = json.loads(state.read_text())["epoch"]
    time.sleep(0.5)  # well inside the next epoch
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert json.loads(state.read_text())["epoch"] == epoch_done < 3  # killed mid-run
    # no half-written checkpoint directory is taken for the real one
    resumed = _run(str(ckpt), "3", "resume")
    straight = _run("-", "3", "fresh")
    assert resumed["history"] == straight["history"]
    assert resumed["valid"] == straight["valid"]


def _tiny_data() -> SequenceData:
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 20, size=rng.integers(2, 8))) for _ in range(60)]
    return SequenceData.from_lists(seqs, n_items=20)


class _CountingStrategy:
    """A minimal strategy: one linear layer, loss injected per epoch."""

    units = "seq"

    def __init__(self, losses: list[float]) -> None:
        self.losses = losses
        self.epoch = 0

    def setup(self, model, data, *, rng, device) -> None:
        self.model = model
        self.rng = rng

    def epoch_units(self) -> int:
        return 1

    def run_epoch(self, progress):
        with torch.no_grad():
            self.model.weight.add_(float(self.rng.random()))
        loss = self.losses[self.epoch]
        self.epoch += 1
        return loss, 1

    def finish(self) -> None:
        pass

    def state_dict(self):
        return {"epoch": self.epoch}

    def load_state_dict(self, state) -> None:
        self.epoch = state["epoch"]


def test_divergence_names_the_epoch():
    model = torch.nn.Linear(2, 2)
    t = Trainer(
        TrainConfig(epochs=3, progress=False, batch_size=1, optimizer="adam", learning_rate=1)
    )
    with pytest.raises(DivergenceError, match="epoch 2"):
        t.fit(model, _CountingStrategy([1.0, math.nan, 1.0]), _tiny_data())


def test_early_stopping_keeps_the_best_state_and_resume_refuses_a_changed_config(tmp_path):
    model = torch.nn.Linear(2, 2)
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2])
    best_weight = {}

    def validate(m):
        s = next(scores)
        if s == 0.5:
            best_weight["w"] = m.weight.detach().clone()
        return {"recall@20": s}

    cfg = TrainConfig(
        epochs=5, patience=2, progress=False, batch_size=1, optimizer="adam", learning_rate=1
    )
    t = Trainer(cfg, seed=0, validate=validate, checkpoint_dir=tmp_path, fingerprint={"a": 1})
    hist = t.fit(model, _CountingStrategy([1.0] * 5), _tiny_data())
    assert [h.epoch for h in hist] == [1, 2, 3, 4]  # stopped 2 epochs after the best
    assert torch.equal(model.weight, best_weight["w"])
    state = read_state_dir(tmp_path / "checkpoint")
    assert state["stopped"] and state["epoch"] == 4
    t2 = Trainer(cfg, seed=0, validate=validate, checkpoint_dir=tmp_path, fingerprint={"a": 2})
    with pytest.raises(ConfigError, match="differing keys: a"):
        t2.fit(torch.nn.Linear(2, 2), _CountingStrategy([1.0] * 5), _tiny_data(), resume=True)


def test_state_files_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    state = {
        "t": torch.arange(6).view(2, 3),
        "nested": {"list": [torch.ones(2), 3, "x"], "arr": np.arange(4)},
        "rng": rng.bit_generator.state,
        "none": None,
        "optim": torch.optim.Adam(torch.nn.Linear(2, 1).parameters()).state_dict(),
    }
    write_state_dir(tmp_path / "s", state)
    back = read_state_dir(tmp_path / "s")
    assert torch.equal(back["t"], state["t"])
    assert torch.equal(back["nested"]["list"][0], torch.ones(2))
    assert back["nested"]["list"][1:] == [3, "x"]
    np.testing.assert_array_equal(back["nested"]["arr"], np.arange(4))
    assert back["rng"] == state["rng"] and back["none"] is None
    assert back["optim"]["param_groups"][0]["params"] == [0, 1]  # int ids kept
    assert list(back["optim"]["state"]) == list(state["optim"]["state"])
    tensors: dict = {}
    assert join_state(split_state(state, tensors), tensors)["rng"] == state["rng"]
    assert not [p for p in Path(tmp_path).iterdir() if p.name.startswith(".")]  # no temp left


def test_model_state_of_a_module_is_its_state_dict():
    m = torch.nn.Linear(3, 2)
    tensors, meta = model_state(m)
    assert set(tensors) == {"weight", "bias"} and meta == {}
