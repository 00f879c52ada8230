"""Resumable runs: ``seqrec run`` killed for real (SIGKILL, SIGTERM) and continued with
``--resume`` to exactly the uninterrupted result; refusal of a changed config; no debris."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _configs import TINY
from seqrec.cli import main
from seqrec.exceptions import ConfigError
from seqrec.experiment import RunExistsError, grid, load_experiment, run_grid, run_name, run_one
from seqrec.experiment import runs as runs_module
from seqrec.recommender import Recommender
from seqrec.train import Trainer

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
]

# One epoch takes about a second on one thread: a kill after the first checkpoint lands
# inside the second epoch. Patience 2 over 4 epochs: the best epoch's weights (kept in the
# checkpoint) are what is evaluated.
EXPERIMENT = """\
name = "resume"
seed = 3

[data]
dataset = "synthetic"

[data.synthetic]
n_sessions = 6000
n_items = 300
mean_length = 8.0
seed = 1

[preprocess]
min_session_length = 2
min_item_support = 1

[split]
method = "time"
test_days = 4
valid_days = 4

[model]
name = "gru4rec"
layers = [32]
dropout_hidden = 0.1

[objective]
loss = "cross-entropy"
negatives = "sampled"
n_sample = 64

[train]
optimizer = "adagrad"
learning_rate = 0.1
momentum = 0.2
batch_size = 16
epochs = 4
patience = 2

[eval]
metrics = ["recall@20", "mrr@20"]
on = ["valid", "test"]
"""

RUN_FILES = ["artifact", "config.resolved.toml", "log.txt", "metrics.json", "queries"]
PARTIAL_FILES = ["checkpoint", "config.resolved.toml", "log.txt"]


def _seqrec(*args: str, stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "seqrec.cli", "--threads", "1", "run", *args, "--no-progress"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def _finish(p: subprocess.Popen) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err or ""


def _wait_for_checkpoint(p: subprocess.Popen, partial: Path) -> int:
    state = partial / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.exists(), "no checkpoint after the first epoch"
    return json.loads(state.read_text())["epoch"]


def _history(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The history without its timings."""
    return [{k: h[k] for k in ("epoch", "loss", "events", "valid")} for h in metrics["history"]]


def _assert_same_result(a: dict[str, Any], b: dict[str, Any]) -> None:
    for part in ("valid", "test"):
        assert a[part]["metrics"] == b[part]["metrics"]
        assert a[part]["n_queries"] == b[part]["n_queries"]
    assert _history(a) == _history(b)
    assert a["train"]["epochs"] == b["train"]["epochs"]


def _no_debris(run_dir: Path) -> None:
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]
    assert sorted(p.name for p in run_dir.iterdir()) == RUN_FILES


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("resume") / "resume.toml"
    p.write_text(EXPERIMENT)
    return p


@pytest.fixture(scope="module")
def straight(experiment: Path) -> Any:
    """The uninterrupted run (started in the background, awaited on first use)."""
    out = experiment.parent / "straight" / "run"
    proc = _seqrec(str(experiment), "--out", str(out), stderr=subprocess.DEVNULL)
    result: dict[str, Any] = {}

    def get() -> dict[str, Any]:
        if not result:
            rc, _, _ = _finish(proc)
            assert rc == 0
            _no_debris(out)
            result.update(json.loads((out / "metrics.json").read_text()))
        return result

    yield get
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------- real kills
def test_sigkill_then_resume_equals_the_uninterrupted_run(
    experiment: Path, straight, capsys: pytest.CaptureFixture[str]
) -> None:
    out = experiment.parent / "killed" / "run"
    partial = out.parent / ".run.partial"
    p = _seqrec(str(experiment), "--out", str(out), stderr=subprocess.DEVNULL)
    done = _wait_for_checkpoint(p, partial)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    state = partial / "checkpoint" / "state.json"
    before = state.read_bytes()
    assert json.loads(before)["epoch"] == done < 4  # killed before the end
    assert not out.exists()

    # a changed config is refused, naming the key; nothing is touched
    assert (
        main(
            [
                "run",
                str(experiment),
                "--out",
                str(out),
                "--resume",
                "--no-progress",
                "--set",
                "train.learning_rate=0.2",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "train.learning_rate" in err and "without --resume" in err and "Traceback" not in err
    assert state.read_bytes() == before

    rc, _, err = _finish(_seqrec(str(experiment), "--out", str(out), "--resume"))
    assert rc == 0, err
    assert f"after epoch {done}" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["resumed_after_epoch"] == done
    assert "resuming" in (out / "log.txt").read_text()
    _no_debris(out)
    _assert_same_result(metrics, straight())

    # once finished, --resume says so and does not run again
    assert main(["run", str(experiment), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "not run again" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_sigterm_leaves_only_a_resumable_checkpoint(experiment: Path, straight) -> None:
    out = experiment.parent / "terminated" / "run"
    partial = out.parent / ".run.partial"
    p = _seqrec(str(experiment), "--out", str(out))
    done = _wait_for_checkpoint(p, partial)
    p.send_signal(signal.SIGTERM)
    rc, _, err = _finish(p)
    assert rc == 128 + signal.SIGTERM
    assert "--resume" in err and "Traceback" not in err
    # nothing but the stable partial directory, holding only what a resume needs
    assert sorted(x.name for x in out.parent.iterdir()) == [".run.partial"]
    assert sorted(x.name for x in partial.iterdir()) == PARTIAL_FILES
    assert json.loads((partial / "checkpoint" / "state.json").read_text())["epoch"] >= done

    res = run_one(load_experiment(experiment), out, progress=False, resume=True)
    assert res.status == "resumed"
    _no_debris(out)
    _assert_same_result(res.metrics, straight())


# ------------------------------------------------------------------- in process
@pytest.fixture
def tiny(tmp_path: Path) -> Any:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return load_experiment(p, ["train.epochs=3", "train.patience=2"])


def _interrupt_after_checkpoint(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Ctrl-C right after the n-th checkpoint of a run."""
    orig = Trainer._save
    count = [0]

    def save(self: Trainer, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        count[0] += 1
        if count[0] == n:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save)


def test_interrupted_run_resumes_and_start_over_discards(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ref = run_one(tiny, tmp_path / "ref" / "tiny", progress=False)
    assert ref.status == "new" and ref.metrics["train"]["resumed_after_epoch"] is None
    out = tmp_path / "runs" / "tiny"
    partial = out.parent / ".tiny.partial"
    for resume in (True, False):
        with monkeypatch.context() as m:
            _interrupt_after_checkpoint(m, 2)
            with pytest.raises(KeyboardInterrupt):
                run_one(tiny, out, progress=False)
        assert sorted(p.name for p in out.parent.iterdir()) == [".tiny.partial"]
        assert sorted(p.name for p in partial.iterdir()) == PARTIAL_FILES
        caplog.clear()
        res = run_one(tiny, out, progress=False, resume=resume)
        if resume:
            assert res.status == "resumed" and res.metrics["train"]["resumed_after_epoch"] == 2
            assert res.metrics["train"]["epochs"] == 3
        else:
            assert res.status == "new"
            assert "starting over" in caplog.text and "checkpoint after epoch 2" in caplog.text
        _assert_same_result(res.metrics, ref.metrics)
        _no_debris(out)
        shutil.rmtree(out)


def test_changed_data_is_refused(tiny, tmp_path: Path, monkeypatch) -> None:
    """The experiment config is compared, not only the model's: data and split count too."""
    out = tmp_path / "runs" / "tiny"
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, 1)
        with pytest.raises(KeyboardInterrupt):
            run_one(tiny, out, progress=False)
    other = tiny.model_copy(
        update={
            "data": tiny.data.model_copy(
                update={"synthetic": tiny.data.synthetic.model_copy(update={"n_sessions": 99})}
            ),
            "split": tiny.split.model_copy(update={"test_days": 5.0}),
        }
    )
    with pytest.raises(ConfigError) as e:
        run_one(other, out, progress=False, resume=True)
    msg = str(e.value)
    assert "data.synthetic.n_sessions" in msg and "split.test_days" in msg
    assert "without --resume" in msg
    assert sorted(p.name for p in (out.parent / ".tiny.partial").iterdir()) == PARTIAL_FILES


def test_resume_of_a_finished_run_with_another_config_names_the_keys(tiny, tmp_path) -> None:
    out = tmp_path / "runs" / "tiny"
    run_one(tiny, out, progress=False)
    other = tiny.model_copy(update={"seed": 5})
    with pytest.raises(RunExistsError, match=r"different config \(differing keys: seed\)"):
        run_one(other, out, progress=False, resume=True)


def test_stale_temporaries_are_removed_and_a_renamed_checkpoint_restored(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = run_one(tiny, tmp_path / "ref" / "tiny", progress=False)
    out = tmp_path / "runs" / "tiny"
    partial = out.parent / ".tiny.partial"
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, 1)
        with pytest.raises(KeyboardInterrupt):
            run_one(tiny, out, progress=False)
    # what kills at the worst moments leave: temp dirs of an older seqrec, a finished run
    # renamed aside, a checkpoint renamed aside mid-replace, half-written files
    (out.parent / ".tiny.tmp-abc123").mkdir()
    (out.parent / ".tiny.old-999999999").mkdir()
    os.replace(partial / "checkpoint", partial / ".checkpoint.old-999999999")
    (partial / ".checkpoint.x1y2").mkdir()
    (partial / ".metrics.json.tmp-999999999").write_text("{")
    (partial / "artifact").mkdir()
    res = run_one(tiny, out, progress=False, resume=True)
    assert res.status == "resumed" and res.metrics["train"]["resumed_after_epoch"] == 1
    _assert_same_result(res.metrics, ref.metrics)
    _no_debris(out)


def test_kill_while_moving_a_finished_run_into_place(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "runs" / "tiny"

    def boom(partial: Path, out_dir: Path) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(runs_module, "_finish", boom)
        with pytest.raises(KeyboardInterrupt):
            run_one(tiny, out, progress=False)
    partial = out.parent / ".tiny.partial"
    assert (partial / "metrics.json").is_file()
    first = json.loads((partial / "metrics.json").read_text())
    res = run_one(tiny, out, progress=False, resume=True)  # no retraining: just moved into place
    assert res.status == "resumed" and res.metrics == first
    _no_debris(out)


def test_failed_run_before_any_checkpoint_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    cfg = load_experiment(p, ["model.name=pop"])  # not trained: never a checkpoint

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Recommender, "save", boom)
    with pytest.raises(RuntimeError):
        run_one(cfg, tmp_path / "runs" / "pop", progress=False)
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_second_writer_of_the_same_run_is_refused(tiny, tmp_path: Path) -> None:
    import fcntl

    out = tmp_path / "runs" / "tiny"
    partial = out.parent / ".tiny.partial"
    partial.mkdir(parents=True)
    fd = os.open(partial, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(RunExistsError, match="another process"):
            run_one(tiny, out, progress=False)
    finally:
        os.close(fd)


def test_grid_resume_keeps_finished_points_and_continues_the_interrupted_one(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configs = grid(tiny, {"model.layers": [[4], [8]]})
    ref = run_grid(configs, tmp_path / "ref", progress=False)
    root = tmp_path / "g"
    with monkeypatch.context() as m:
        _interrupt_after_checkpoint(m, 3 + 2)  # point 0 (3 epochs) done, point 1 after epoch 2
        with pytest.raises(KeyboardInterrupt):
            run_grid(configs, root, progress=False)
    n0, n1 = (run_name(c) for c in configs)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [f".{n1}.partial", "points.csv", "summary.csv", n0]
    )
    res = run_grid(configs, root, progress=False, resume=True)
    assert [r.status for r in res] == ["finished", "resumed"]
    for a, b in zip(res, ref, strict=True):
        _assert_same_result(a.metrics, b.metrics)
    assert sorted(p.name for p in root.iterdir()) == sorted(["points.csv", "summary.csv", n0, n1])
    assert _summary(root) == _summary(tmp_path / "ref")


def _summary(root: Path) -> list[dict[str, str]]:
    import csv

    rows = list(csv.DictReader((root / "summary.csv").open()))
    return [{k: v for k, v in r.items() if k not in ("train_seconds", "status")} for r in rows]


def test_run_help_says_what_resume_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ".<name>.partial/" in text and "checkpoint" in text
    assert "continue an unfinished run from its last epoch checkpoint" in text
