"""Optuna search (``[search] method = "optuna"``): trials as runs, pruning, resume, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from _configs import TINY, TINY_BASKETS, summary_rows, write_experiment
from seqrec.cli import main
from seqrec.exceptions import ConfigError
from seqrec.experiment import ExperimentConfig, RunExistsError, grid, load_experiment, run_name
from seqrec.experiment import runs as runs_module

optuna = pytest.importorskip("optuna", reason="the optuna extra: pip install 'seqrec[optuna]'")

from seqrec.experiment.optuna_search import PRUNED_FILE, STUDY_FILE, run_optuna  # noqa: E402

SPACE = """\
[grid]
"train.learning_rate" = {low = 0.001, high = 0.5, log = true}
"model.layers" = [[4], [8]]
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def _study(root: Path, name: str = "tiny") -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(root / STUDY_FILE)
    storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    return optuna.load_study(study_name=name, storage=storage)


def _points(root: Path) -> list[tuple[str, str]]:
    return [(r["train.learning_rate"], r["model.layers"]) for r in summary_rows(root)]


def test_a_study_runs_trials_as_runs_with_summaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = write_experiment(
        tmp_path, SPACE + '[search]\nmethod = "optuna"\nn = 4\nseed = 1\npruner = "none"\n'
    )
    root = tmp_path / "o"
    assert main(["run", str(exp), "--out", str(root), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "optuna best: trial" in text and "valid recall@20" in text
    rows = summary_rows(root)
    study = _study(root)
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert 1 <= len(rows) <= 4  # one row per run; a suggested point run before is reused
    for r in rows:
        assert (root / r["run"] / "metrics.json").is_file() and r["status"] == "new"
        assert r["run"] == f"tiny-{r['point']}-s0" and r["trial"] != ""
        assert 0.001 <= float(r["train.learning_rate"]) <= 0.5
        assert r["model.layers"] in ("[4]", "[8]")
    assert len(summary_rows(root, "points.csv")) == len(rows)
    for t in study.trials:  # the objective: the validation metric of the trial's run
        done = json.loads((root / t.user_attrs["runs"][0] / "metrics.json").read_text())
        assert t.value == pytest.approx(done["valid"]["metrics"]["recall@20"])
    # seeded: the same study again suggests the same points
    again = tmp_path / "again"
    assert main(["run", str(exp), "--out", str(again), "--no-progress"]) == 0
    assert _points(again) == _points(root)
    # an existing study needs --resume or --overwrite
    with pytest.raises(RunExistsError, match="resume"):
        run_optuna(load_experiment(exp), root, progress=False)


def test_pruning_stops_poor_trials_and_records_them(tmp_path: Path) -> None:
    # a planted case: learning rates from 1e-5 (learns nothing in 3 epochs) to 0.5; MRR per
    # epoch; the median pruner starts after one finished trial
    exp = write_experiment(
        tmp_path,
        '[grid]\n"train.learning_rate" = {low = 0.00001, high = 0.5, log = true}\n'
        '[search]\nmethod = "optuna"\nn = 6\nsampler = "random"\nseed = 0\n'
        "pruner_startup_trials = 1\n",
        base=TINY.replace("epochs = 1", 'epochs = 3\nvalid_metric = "mrr@20"'),
    )
    cfg = load_experiment(exp)
    root = tmp_path / "p"
    res = run_optuna(cfg, root, progress=False)
    statuses = [r.status for r in res]
    assert "pruned" in statuses and "new" in statuses
    study = _study(root)
    assert {t.state.name for t in study.trials} == {"COMPLETE", "PRUNED"}
    best = max(t.value for t in study.trials if t.state.name == "COMPLETE")
    best_lr = max(r.config.train.learning_rate for r in res if r.status == "new")
    for r in (r for r in res if r.status == "pruned"):
        assert r.config.train.learning_rate < min(best_lr, 0.01)  # the planted poor points
        record = json.loads((r.out_dir / PRUNED_FILE).read_text())
        assert record["value"] < best
        assert record["metric"] == "mrr@20" and record["intermediate_values"]
        assert record["pruned_after_epoch"] < 3
        assert (r.out_dir / "config.resolved.toml").is_file()
        assert not (r.out_dir / "metrics.json").exists()
    rows = summary_rows(root)
    assert [r["status"] for r in rows] == statuses
    assert any(p.get("n_pruned") not in (None, "", "0") for p in summary_rows(root, "points.csv"))
    assert not list(root.glob(".*.partial"))  # a pruned run leaves no checkpoint behind
    # the report tables the finished trials and lists the pruned ones with their reason
    pytest.importorskip("matplotlib")
    from seqrec import report

    md = report.build([root], tmp_path / "report").markdown.read_text()
    listed = md.split("## Pruned Optuna trials (not in the table)", 1)[1].split("\n## ", 1)[0]
    for r in (r for r in res if r.status == "pruned"):
        assert f"{r.out_dir.name}`: trial" in listed and "pruned after epoch" in listed


def test_resume_continues_the_study_without_rerunning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = SPACE + '[search]\nmethod = "optuna"\nn = 5\nseed = 2\npruner = "none"\n'
    exp = write_experiment(tmp_path, body)
    ref = tmp_path / "ref"
    run_optuna(load_experiment(exp), ref, progress=False)
    # interrupted in its third trial (a kill leaves the trial RUNNING in the journal)
    root = tmp_path / "r"
    real, calls = runs_module._run_into, []

    def killed(cfg: ExperimentConfig, *a: Any, **k: Any) -> Any:
        calls.append(cfg)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(cfg, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(runs_module, "_run_into", killed)
        with pytest.raises(KeyboardInterrupt):
            run_optuna(load_experiment(exp, ["search.n=5"]), root, progress=False)
    assert [t.state.name for t in _study(root).trials][-1] == "RUNNING"
    n_ran = len(calls)
    with (root / STUDY_FILE).open("ab") as f:  # what a kill in the middle of a write leaves
        f.write(b'{"op_code": 6, "worker_id": "x", "tri')
    (root / f"{STUDY_FILE}.lock").touch()
    res = run_optuna(load_experiment(exp), root, progress=False, resume=True)
    study = _study(root)
    ended = [t for t in study.trials if not t.user_attrs.get("interrupted")]
    assert len(ended) == 5 and study.trials[2].user_attrs["interrupted"]
    assert study.trials[3].params == study.trials[2].params  # the interrupted point, again
    assert _points(root) == _points(ref)  # the resumed study = the uninterrupted one
    assert [r.status for r in res][: n_ran - 1] == ["finished"] * (n_ran - 1)
    for a, b in zip(summary_rows(root), summary_rows(ref), strict=True):
        assert a["test.mrr@20"] == b["test.mrr@20"]
    # a bigger budget runs only the new trials; the same budget runs nothing
    calls.clear()
    with monkeypatch.context() as m:
        m.setattr(runs_module, "_run_into", killed)
        run_optuna(load_experiment(exp), root, progress=False, resume=True)
        assert calls == []
        res = run_optuna(load_experiment(exp, ["search.n=7"]), root, progress=False, resume=True)
    assert len([t for t in _study(root).trials if not t.user_attrs.get("interrupted")]) == 7
    assert len(calls) <= 2 and all(r.status in ("finished", "new") for r in res)
    # a changed search is refused on resume
    with pytest.raises(ConfigError, match="space"):
        run_optuna(
            load_experiment(
                write_experiment(tmp_path, body.replace("[8]]", "[6]]"), name="b.toml")
            ),
            root,
            resume=True,
        )


def test_next_basket_study(tmp_path: Path) -> None:

    exp = write_experiment(
        tmp_path,
        '[grid]\n"model.k" = {low = 2, high = 12, integer = true}\n'
        '[search]\nmethod = "optuna"\nn = 3\n',
        base=TINY_BASKETS,
    )
    root = tmp_path / "b"
    res = run_optuna(load_experiment(exp), root, progress=False)
    assert res and all(r.status == "new" for r in res)
    rows = summary_rows(root)
    assert all(2 <= int(r["model.k"]) <= 12 for r in rows)
    study = _study(root, "nb")
    # the objective: train.valid_metric (recall@20, one of the next-basket metrics)
    assert "valid.recall@20" in rows[0] and "valid.f1_micro" in rows[0]
    done = json.loads((root / study.trials[0].user_attrs["runs"][0] / "metrics.json").read_text())
    assert study.trials[0].value == pytest.approx(done["valid"]["metrics"]["recall@20"])
    # another metric: search.metric (kNN trains no epochs: nothing to prune, no conflict)
    exp2 = write_experiment(
        tmp_path, exp.read_text() + 'metric = "f1_micro"\n', base="", name="f.toml"
    )
    run_optuna(load_experiment(exp2), tmp_path / "f", progress=False)
    t = _study(tmp_path / "f", "nb").trials[0]
    done = json.loads((tmp_path / "f" / t.user_attrs["runs"][0] / "metrics.json").read_text())
    assert t.value == pytest.approx(done["valid"]["metrics"]["f1_micro"])


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ('method = "optuna"', "needs a budget"),
        ('method = "optuna"\nn = 2\nsampler = "cmaes"', "sampler"),
        ('method = "optuna"\nn = 2\npruner = "hyperband"', "pruner"),
        ('method = "optuna"\nn = 2\nn_trials = 3', "n_trials"),
        ('method = "optuna"\nn = 0', "n"),
        ('sampler = "random"', "apply to method = 'optuna' only"),
        ('method = "optuna"\nn = 2\nmetric = "ndcg@10"', "not in eval.metrics"),
        ('method = "optuna"\nn = 2\nmetric = "mrr@20"', "train.valid_metric"),
        ('method = "optuna"\nn = 2\nmetric = "bogus@3"', "search.metric"),
    ],
)
def test_bad_optuna_sections(tmp_path: Path, search: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_experiment(write_experiment(tmp_path, f"{SPACE}[search]\n{search}\n"))


def test_bad_spaces_and_jobs_fail_before_anything_trains(tmp_path: Path) -> None:
    opt = '[search]\nmethod = "optuna"\nn = 2\n'
    root = tmp_path / "x"
    bad = write_experiment(tmp_path, '[grid]\n"model.n_heads" = [1, 2]\n' + opt)
    with pytest.raises(ConfigError, match="n_heads"):
        run_optuna(load_experiment(bad), root)
    low = write_experiment(
        tmp_path, '[grid]\n"train.epochs" = {low = -3, high = 2, integer = true}\n' + opt
    )
    with pytest.raises(ConfigError, match="epochs"):
        run_optuna(load_experiment(low), root)
    ok = load_experiment(write_experiment(tmp_path, SPACE + opt, name="ok.toml"))
    with pytest.raises(ConfigError, match="one at a time"):
        run_optuna(ok, root, jobs=2)
    with pytest.raises(ConfigError, match="max_runs"):
        run_optuna(
            ok.model_copy(update={"search": ok.search.model_copy(update={"max_runs": 1})}), root
        )
    with pytest.raises(ConfigError, match="run_optuna"):
        grid(ok)
    assert main(["run", str(bad), "--out", str(root), "--no-progress"]) == 2
    assert not root.exists() or not any(root.glob("tiny-*"))


def test_a_missing_optuna_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_experiment(
        write_experiment(tmp_path, SPACE + '[search]\nmethod = "optuna"\nn = 2\n')
    )
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'seqrec\[optuna\]'"):
        run_optuna(cfg, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_run_names_are_point_hashes(tmp_path: Path) -> None:
    exp = write_experiment(
        tmp_path, SPACE + '[search]\nmethod = "optuna"\nn = 2\npruner = "none"\n'
    )
    res = run_optuna(load_experiment(exp), tmp_path / "n", progress=False)
    assert all(r.out_dir.name == run_name(r.config) for r in res)


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_a_sigkilled_study_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    exp = write_experiment(
        tmp_path,
        SPACE + '[search]\nmethod = "optuna"\nn = 4\nseed = 3\npruner = "none"\n',
        base=TINY.replace("n_sessions = 150", "n_sessions = 600").replace(
            "epochs = 1", "epochs = 3"
        ),
    )
    ref = tmp_path / "ref"
    run_optuna(load_experiment(exp), ref, progress=False)
    root = tmp_path / "k"
    cmd = [sys.executable, "-m", "seqrec.cli", "--threads", "1", "run", str(exp)]
    cmd += ["--out", str(root), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if list(root.glob("tiny-*/metrics.json")) and list(root.glob(".tiny-*.partial")):
            break  # one run finished, the next one is training
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = {p.parent.name for p in root.glob("tiny-*/metrics.json")}
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _points(root) == _points(ref)
    for row, want in zip(summary_rows(root), summary_rows(ref), strict=True):
        assert row["test.mrr@20"] == want["test.mrr@20"]
        assert (row["status"] == "finished") == (row["run"] in before)
    assert not list(root.glob(".*.partial"))
