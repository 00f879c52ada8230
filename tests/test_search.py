"""Search spaces (grid, random, seeds, max_runs), point ids, failed points, seed statistics."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from _configs import TINY, TINY_BASKETS, summary_rows, write_experiment
from seqrec.cli import main
from seqrec.exceptions import ConfigError
from seqrec.experiment import (
    ERROR_FILE,
    ExperimentConfig,
    grid,
    load_experiment,
    point_id,
    run_grid,
    run_name,
    seed_stats,
)
from seqrec.experiment import runs as runs_module
from seqrec.experiment.search import random_points, search_points

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------- point ids
def test_point_id_ignores_name_seed_and_order_of_the_grid(tmp_path: Path) -> None:
    a = grid(write_experiment(tmp_path, '[grid]\n"model.layers" = [[4], [8]]\n'))
    b = grid(
        write_experiment(tmp_path, '[grid]\n"model.layers" = [[8], [2], [4]]\n', name="b.toml")
    )
    assert {point_id(c) for c in a} < {point_id(c) for c in b}
    renamed = a[0].model_copy(update={"name": "other", "seed": 7})
    assert point_id(renamed) == point_id(a[0])
    assert run_name(a[0]) == f"tiny-{point_id(a[0])}-s0"
    assert point_id(a[0]) != point_id(a[1])


def test_grown_and_shrunk_grid_reuses_finished_points(tmp_path: Path) -> None:
    root = tmp_path / "g"
    first = run_grid(
        grid(write_experiment(tmp_path, '[grid]\n"model.layers" = [[4], [8]]\n')), root
    )
    assert [r.status for r in first] == ["new", "new"]
    grown = grid(
        write_experiment(tmp_path, '[grid]\n"model.layers" = [[2], [4], [8]]\n', name="b.toml")
    )
    res = run_grid(grown, root, progress=False, resume=True)
    assert [r.status for r in res] == ["new", "finished", "finished"]
    for a, b in zip(first, res[1:], strict=True):
        assert a.metrics["test"]["metrics"] == b.metrics["test"]["metrics"]
    shrunk = grid(write_experiment(tmp_path, '[grid]\n"model.layers" = [[8]]\n', name="c.toml"))
    res = run_grid(shrunk, root, progress=False, resume=True)
    assert [r.status for r in res] == ["finished"]
    assert [r["run"] for r in summary_rows(root)] == [run_name(shrunk[0])]  # the table: this grid
    assert len(list(root.glob("tiny-*-s0"))) == 3  # the other points stay on disk


def test_failed_point_is_recorded_and_the_grid_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = write_experiment(tmp_path, '[grid]\n"model.layers" = [[4], [8], [6]]\n')
    configs = grid(exp)
    real = runs_module._run_into

    def flaky(cfg: ExperimentConfig, *a: Any, **k: Any) -> Any:
        if cfg.model.layers == [8]:
            raise RuntimeError("the loss diverged (test)")
        return real(cfg, *a, **k)

    root = tmp_path / "g"
    with monkeypatch.context() as m:
        m.setattr(runs_module, "_run_into", flaky)
        res = run_grid(configs, root, progress=False)
    assert [r.status for r in res] == ["new", "failed", "new"]
    assert res[1].error == "RuntimeError: the loss diverged (test)"
    rows = summary_rows(root)
    assert [r["status"] for r in rows] == ["new", "failed", "new"]
    assert rows[1]["error"] == res[1].error and rows[1]["test.recall@20"] == ""
    record = json.loads((root / run_name(configs[1]) / ERROR_FILE).read_text())
    assert record["error"] == "RuntimeError" and "diverged" in record["traceback"]
    assert (root / run_name(configs[1]) / "config.resolved.toml").is_file()
    points = summary_rows(root, "points.csv")
    assert [p["n_failed"] for p in points] == ["0", "1", "0"]
    # the next run retries the failed point (now fixed) and keeps the finished ones
    again = run_grid(configs, root, progress=False, resume=True)
    assert [r.status for r in again] == ["finished", "new", "finished"]
    assert not (root / run_name(configs[1]) / ERROR_FILE).exists()
    # the CLI says so and exits 1 when a point fails
    with monkeypatch.context() as m:
        m.setattr(runs_module, "_run_into", flaky)
        rc = main(["run", str(exp), "--out", str(tmp_path / "cli"), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "1 of 3 runs failed" in err and "diverged" in err


# ----------------------------------------------------------------------------- seeds
def test_seed_stats_is_a_t_interval() -> None:
    v = [0.2, 0.25, 0.3]
    s = seed_stats(v)
    half = stats.t.ppf(0.975, 2) * stats.tstd(v) / math.sqrt(3)
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.25)
    assert s["std"] == pytest.approx(0.05)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.25 - half, 0.25 + half))
    assert seed_stats([0.1])["std"] is None and seed_stats([None])["mean"] is None


def test_seeds_per_point_with_mean_std_and_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = write_experiment(
        tmp_path, '[grid]\n"model.layers" = [[4], [8]]\n[search]\nseeds = [0, 1, 2]\n'
    )
    configs = grid(exp)
    assert [c.seed for c in configs] == [0, 1, 2, 0, 1, 2]
    assert len({point_id(c) for c in configs}) == 2
    assert all(c.search is None and not c.grid for c in configs)
    out = tmp_path / "g"
    assert main(["run", str(exp), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "±" in text and "seeds" in text and "-s*" in text
    rows = summary_rows(out)
    assert [r["seed"] for r in rows] == ["0", "1", "2"] * 2
    points = summary_rows(out, "points.csv")
    assert [p["n_seeds"] for p in points] == ["3", "3"]
    mrr = [float(r["test.mrr@20"]) for r in rows[:3]]
    s = seed_stats(mrr)
    assert float(points[0]["test.mrr@20.mean"]) == pytest.approx(s["mean"])
    assert float(points[0]["test.mrr@20.ci_low"]) == pytest.approx(s["ci_low"])
    n = grid(
        write_experiment(
            tmp_path, "[search]\nn_seeds = 2\n", base=TINY.replace("seed = 0", "seed = 5")
        )
    )
    assert [c.seed for c in n] == [5, 6]


def test_next_basket_grid_with_seeds(tmp_path: Path) -> None:
    exp = write_experiment(
        tmp_path, '[grid]\n"model.k" = [2, 4]\n[search]\nn_seeds = 2\n', TINY_BASKETS
    )
    root = tmp_path / "b"
    res = run_grid(grid(exp), root, progress=False)
    assert len(res) == 4 and all(r.status == "new" for r in res)
    points = summary_rows(root, "points.csv")
    assert len(points) == 2 and "test.f1_micro.mean" in points[0]
    assert points[0]["test.f1_micro.std"] != ""


# ------------------------------------------------------------------------ bad input
def test_max_runs_says_how_many(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, '[grid]\n"model.layers" = [[4], [8]]\n[search]\nn_seeds = 3\n')
    with pytest.raises(ConfigError, match=r"2 point\(s\) x 3 seed\(s\) = 6 runs.*max_runs = 5"):
        grid(load_experiment(exp, ["search.max_runs=5"]))
    assert len(grid(load_experiment(exp, ["search.max_runs=6"]))) == 6
    assert main(["run", str(exp), "--max-runs", "4", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_empty_search_space_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty search space"):
        load_experiment(write_experiment(tmp_path, "[grid]\n"))
    with pytest.raises(ConfigError, match="empty search space"):
        grid(write_experiment(tmp_path, '[search]\nmethod = "random"\nn = 3\n', name="r.toml"))


def test_a_parameter_the_model_does_not_have_is_an_error(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, '[grid]\n"model.n_heads" = [1, 2]\n')
    with pytest.raises(ConfigError) as e:
        grid(exp)
    msg = str(e.value)
    assert "n_heads" in msg and "gru4rec" in msg and "layers" in msg


@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ('method = "random"', "needs a budget"),
        ("n = 3", "budget of method = 'random'"),
        ("seeds = [0, 1]\nn_seeds = 2", "at most one"),
        ("seeds = [1, 1]", "repeated"),
        ("max_runs = 0", "max_runs"),
        ("budget = 3", "budget"),
    ],
)
def test_bad_search_sections(tmp_path: Path, search: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_experiment(write_experiment(tmp_path, f"[search]\n{search}\n"))


def test_ranges_need_a_random_search(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="random"):
        load_experiment(
            write_experiment(
                tmp_path, '[grid]\n"train.learning_rate" = {low = 0.001, high = 0.1}\n'
            )
        )
    with pytest.raises(ConfigError, match="low < high"):
        load_experiment(
            write_experiment(
                tmp_path,
                '[grid]\n"train.learning_rate" = {low = 0.1, high = 0.01}\n'
                '[search]\nmethod = "random"\nn = 2\n',
            )
        )


# ---------------------------------------------------------------------------- random
RANDOM = """\
[grid]
"train.learning_rate" = {low = 0.0001, high = 0.1, log = true}
"model.layers" = [[4], [8]]
"train.batch_size" = {low = 8, high = 32, integer = true}

[search]
method = "random"
n = 6
seed = 3
"""


def test_random_search_draws_n_distinct_points_in_the_space(tmp_path: Path) -> None:
    configs = grid(write_experiment(tmp_path, RANDOM))
    assert len(configs) == 6 and len({point_id(c) for c in configs}) == 6
    for c in configs:
        assert 1e-4 <= c.train.learning_rate <= 0.1
        assert c.model.layers in ([4], [8])
        assert isinstance(c.train.batch_size, int) and 8 <= c.train.batch_size <= 32
    lrs = [c.train.learning_rate for c in configs]
    assert max(lrs) / min(lrs) > 10  # log-uniform over three decades
    again = grid(write_experiment(tmp_path, RANDOM, name="b.toml"))
    assert [point_id(c) for c in again] == [point_id(c) for c in configs]  # seeded
    more = grid(write_experiment(tmp_path, RANDOM.replace("n = 6", "n = 9"), name="c.toml"))
    assert [point_id(c) for c in more[:6]] == [point_id(c) for c in configs]  # a grown budget
    other = grid(write_experiment(tmp_path, RANDOM.replace("seed = 3", "seed = 4"), name="d.toml"))
    assert [point_id(c) for c in other] != [point_id(c) for c in configs]


def test_random_search_over_a_small_space_stops_at_its_size() -> None:
    points = random_points({"a": [1, 2], "b": ["x", "y"]}, 10, seed=0)
    assert len(points) == 4
    assert {(p["a"], p["b"]) for p in points} == {(1, "x"), (1, "y"), (2, "x"), (2, "y")}
    assert search_points({}) == [{}]


def test_random_search_runs(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, RANDOM.replace("n = 6", "n = 2"))
    root = tmp_path / "r"
    assert main(["run", str(exp), "--out", str(root), "--no-progress"]) == 0
    rows = summary_rows(root)
    assert len(rows) == 2 and "train.learning_rate" in rows[0]


# ------------------------------------------------------------------------------ jobs
def test_jobs_run_points_in_workers_with_the_serial_results(tmp_path: Path) -> None:
    configs = grid(write_experiment(tmp_path, '[grid]\n"model.layers" = [[4], [8], [6]]\n'))
    serial = run_grid(configs, tmp_path / "a", progress=False)
    parallel = run_grid(configs, tmp_path / "b", progress=False, jobs=2)
    assert [r.out_dir.name for r in parallel] == [r.out_dir.name for r in serial]
    for a, b in zip(serial, parallel, strict=True):
        assert a.metrics["test"]["metrics"] == b.metrics["test"]["metrics"]
    assert [r["run"] for r in summary_rows(tmp_path / "b")] == [
        r["run"] for r in summary_rows(tmp_path / "a")
    ]
    again = run_grid(configs, tmp_path / "b", progress=False, resume=True, jobs=2)
    assert [r.status for r in again] == ["finished"] * 3
    with pytest.raises(ConfigError, match="jobs"):
        run_grid(configs, tmp_path / "c", jobs=0)


# ----------------------------------------------- a real kill, then a grown grid (issue 9)
KILLED = """\
name = "k"
seed = 0
[data]
dataset = "synthetic"
[data.synthetic]
n_sessions = 800
n_items = 60
seed = 1
[preprocess]
min_item_support = 1
[split]
test_days = 6
valid_days = 6
[model]
name = "gru4rec"
layers = [16]
[objective]
n_sample = 0
[train]
epochs = 2
batch_size = 16
progress = false
[eval]
metrics = ["recall@20", "mrr@20"]
[search]
seeds = [0, 1]
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigkilled_grid_resumes_each_point_once_then_runs_only_new_points(
    tmp_path: Path, jobs: str
) -> None:
    """With --jobs 2 the workers die with the killed grid (no orphan finishes its run or
    holds its lock while the grid resumes: ``communicate`` returns once every holder of
    the stderr pipe is gone)."""
    exp = tmp_path / "k.toml"
    exp.write_text(KILLED + '[grid]\n"model.layers" = [[8], [16]]\n')
    configs = grid(exp)
    ref = {r.out_dir.name: r for r in run_grid(configs, tmp_path / "ref", progress=False)}
    root = tmp_path / "g"
    cmd = [
        sys.executable,
        "-m",
        "seqrec.cli",
        "--threads",
        "1",
        "run",
        str(exp),
        "--out",
        str(root),
        "--jobs",
        jobs,
    ]
    proc = subprocess.Popen(
        [*cmd, "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list(root.glob("k-*/metrics.json"))) >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = {p.parent.name for p in root.glob("k-*/metrics.json")}
    assert 1 <= len(before) < len(configs)
    r = subprocess.run(
        [*cmd, "--resume", "--no-progress"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = summary_rows(root)
    assert sorted(row["run"] for row in rows) == sorted(ref)  # every point, once
    for row in rows:
        assert (row["status"] == "finished") == (row["run"] in before)
        done = json.loads((root / row["run"] / "metrics.json").read_text())
        assert done["test"]["metrics"] == ref[row["run"]].metrics["test"]["metrics"]
    assert not list(root.glob(".*.partial"))
    # one more value: only its two runs (two seeds) are new
    exp.write_text(KILLED + '[grid]\n"model.layers" = [[8], [16], [4]]\n')
    r = subprocess.run(
        [*cmd, "--resume", "--no-progress"], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    status = [row["status"] for row in summary_rows(root)]
    assert status == ["finished"] * 4 + ["new"] * 2


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is gone for our purpose
        if (Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]) == "Z":
            return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_a_parallel_grid_at_once(tmp_path: Path) -> None:
    """SIGTERM to ``seqrec run --jobs 2`` stops the runs in flight at once (the workers are
    terminated, not waited for), each keeping its last epoch checkpoint."""
    exp = tmp_path / "t.toml"
    slow = KILLED.replace("epochs = 2", "epochs = 5000").replace("seeds = [0, 1]", "seeds = [0]")
    exp.write_text(slow + '[grid]\n"model.layers" = [[8], [16]]\n')
    root = tmp_path / "g"
    cmd = [sys.executable, "-m", "seqrec.cli", "--threads", "2", "run", str(exp)]
    cmd += ["--out", str(root), "--jobs", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(root.glob(".*.partial/checkpoint"))) < 2:
        time.sleep(0.05)
    assert len(list(root.glob(".*.partial/checkpoint"))) == 2, "no checkpoints in time"
    workers = _children(proc.pid)
    assert len(workers) >= 2
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # a failure: do not leave the grid (and workers) running
            proc.kill()
            proc.wait()
    assert code == 128 + signal.SIGTERM
    assert time.monotonic() - t < 20  # not 5,000 epochs later
    time.sleep(0.5)
    assert not [w for w in workers if _alive(w)]
    for state in root.glob(".*.partial/checkpoint/state.json"):  # resumable (the SIGKILL
        assert json.loads(state.read_text())["epoch"] >= 1  # test resumes such a grid)
