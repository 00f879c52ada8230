"""Fault suite: real processes killed with SIGKILL / SIGTERM at random points of ``seqrec
run`` (one run and a grid), batch recommendation and ``Recommender.save``.

Afterwards: no partial output is loadable as a result (a run directory, an output file or a
model directory is either absent, the old one, or complete); the next command writing there
leaves no debris (``.*.tmp-<pid>``, ``.*.old-<pid>``, ``.*.parts-<pid>``, dead
``.<name>.partial``); ``--resume`` continues a killed run to a finished one. The kill times
come from a seeded generator (deterministic per seed; a few seconds per case).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from _fuzz import save_pop_model
from seqrec.recommender import Recommender

DEBRIS = re.compile(r"^\..+\.(tmp|old|parts)-\d+$")

EXPERIMENT = """\
name = "f"
seed = 0
[data]
dataset = "synthetic"
[data.synthetic]
n_sessions = 400
n_items = 40
[preprocess]
min_item_support = 1
[split]
test_days = 10
valid_days = 10
[model]
name = "gru4rec"
layers = [16]
[train]
epochs = 3
batch_size = 16
[eval]
on = ["test"]
"""


def _seqrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqrec.cli", "--threads", "1", *args]


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if DEBRIS.match(p.name))


def _kill_after(cmd: list[str], delay: float, sig: int, cwd: Path) -> int:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.communicate(timeout=120)
    return proc.returncode


@pytest.mark.parametrize(("sig", "seed"), [(signal.SIGKILL, 0), (signal.SIGTERM, 1)])
def test_killed_run_resumes_and_leaves_no_debris(tmp_path: Path, sig: int, seed: int) -> None:
    exp = tmp_path / "f.toml"
    exp.write_text(EXPERIMENT)
    out = tmp_path / "runs" / "f"
    delay = float(np.random.default_rng(seed).uniform(1.5, 4.0))
    rc = _kill_after(
        _seqrec("run", str(exp), "--out", str(out), "--no-progress"), delay, sig, tmp_path
    )
    if rc == 0:  # finished before the kill: complete
        assert (out / "metrics.json").is_file()
    else:
        assert rc in (-signal.SIGKILL, 128 + signal.SIGTERM), rc
        assert not out.exists()  # nothing half-written at the run's place
    r = subprocess.run(
        _seqrec("run", str(exp), "--out", str(out), "--resume", "--no-progress"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "metrics.json").is_file()
    Recommender.load(out / "artifact")
    assert _debris(tmp_path) == []
    assert not list((tmp_path / "runs").glob(".*.partial"))


def test_killed_grid_resumes(tmp_path: Path) -> None:
    exp = tmp_path / "g.toml"
    exp.write_text(EXPERIMENT.replace("epochs = 3", "epochs = 2"))
    root = tmp_path / "grid"
    grid = ["--grid", "model.layers=[8],[12],[16]"]
    rc = _kill_after(
        _seqrec("run", str(exp), *grid, "--out", str(root), "--no-progress"),
        3.0,
        signal.SIGKILL,
        tmp_path,
    )
    for d in root.glob("f-*"):  # a point that exists is complete
        assert (d / "metrics.json").is_file(), d
    r = subprocess.run(
        _seqrec("run", str(exp), *grid, "--out", str(root), "--resume", "--no-progress"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, (rc, r.stderr[-2000:])
    assert len(list(root.glob("f-*-s0"))) == 3
    assert pl.read_csv(root / "summary.csv").height == 3
    assert _debris(tmp_path) == [] and not list(root.glob(".*.partial"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_batch_recommendation(tmp_path: Path, sig: int) -> None:
    model = save_pop_model(tmp_path / "model")
    n = 120_000
    rng = np.random.default_rng(3)
    pl.DataFrame(
        {
            "session_id": np.repeat(np.arange(n // 4), 4),
            "item_id": rng.integers(1000, 1030, n),
            "timestamp": np.arange(n, dtype=np.float64),
        }
    ).write_csv(tmp_path / "s.csv")
    out = tmp_path / "recs.parquet"
    cmd = _seqrec(
        "recommend", str(model), "--input", str(tmp_path / "s.csv"), "--output", str(out),
        "--batch-size", "64", "-k", "5",
    )  # fmt: skip
    rc = _kill_after(cmd, 2.0, sig, tmp_path)
    if rc == 0:
        assert pl.read_parquet(out).height == n // 4 * 5
    else:
        assert not out.exists()  # never a half-written output
    small = tmp_path / "small.csv"
    pl.read_csv(tmp_path / "s.csv", n_rows=400).write_csv(small)
    r = subprocess.run(
        _seqrec("recommend", str(model), "--input", str(small), "--output", str(out)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert pl.read_parquet(out).height == 100 * 20
    assert _debris(tmp_path) == []


SAVER = """
import sys
from seqrec.recommender import Recommender
rec = Recommender.load(sys.argv[1])
print("ready", flush=True)
while True:
    rec.save(sys.argv[2])
"""


def test_killed_save_keeps_a_loadable_model(tmp_path: Path) -> None:
    src = save_pop_model(tmp_path / "src")
    dest = tmp_path / "model"
    Recommender.load(src).save(dest)
    for seed in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(src), str(dest)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(float(np.random.default_rng(seed).uniform(0.05, 0.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # the model at dest is the old or the new one, complete; or (killed between the two
        # renames of the swap) absent with the old one aside, which the next save removes
        if dest.exists():
            Recommender.load(dest)
        Recommender.load(src).save(dest)
        Recommender.load(dest)
        assert _debris(tmp_path) == [], _debris(tmp_path)
