"""MLflow tracking (``[tracking] mlflow``, ``seqrec run --mlflow``): params, per-epoch and final
metrics, tags and artifacts in a local store; seqrec's own outputs unchanged."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import pytest

from _configs import TINY, write_experiment
from seqrec.cli import main
from seqrec.exceptions import ConfigError
from seqrec.experiment import grid, load_experiment, point_id, run_grid, run_one

mlflow = pytest.importorskip(
    "mlflow", reason="the mlflow extra (pip install 'seqrec[mlflow]') is not installed"
)
pytest.importorskip("sqlalchemy", reason="a local MLflow store needs SQLAlchemy (the mlflow extra)")

from seqrec.experiment.tracking import STORE_FILE, tracking_uri  # noqa: E402

TWO_EPOCHS = TINY.replace("epochs = 1", 'epochs = 2\nvalid_metric = "mrr@20"')


pytestmark = pytest.mark.usefixtures("one_thread")

_file = functools.partial(write_experiment, base=TWO_EPOCHS)


def _client(store: Path):
    return mlflow.MlflowClient(tracking_uri=tracking_uri(str(store))[0])


def test_cli_mlflow_logs_params_metrics_tags_and_artifacts(tmp_path: Path) -> None:
    store = tmp_path / "mlflow"
    out = tmp_path / "run"
    exp = _file(tmp_path)
    assert main(["run", str(exp), "--out", str(out), "--no-progress", "--mlflow", str(store)]) == 0
    assert (store / STORE_FILE).is_file()
    client = _client(store)
    exp_ = client.get_experiment_by_name("tiny")
    (r,) = client.search_runs([exp_.experiment_id])
    assert r.info.status == "FINISHED" and r.info.run_name == "run"
    cfg = load_experiment(out / "config.resolved.toml")
    assert r.data.params["model.layers"] == "[8]"
    assert r.data.params["train.epochs"] == "2" and r.data.params["data.dataset"] == "synthetic"
    tags = r.data.tags
    assert tags["seqrec.status"] == "new" and tags["seqrec.point"] == point_id(cfg)
    assert tags["seqrec.seed"] == "0" and tags["seqrec.run"] == "run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert r.data.metrics["test.mrr_at_20"] == pytest.approx(metrics["test"]["metrics"]["mrr@20"])
    assert r.data.metrics["valid.recall_at_20"] == pytest.approx(
        metrics["valid"]["metrics"]["recall@20"]
    )
    loss = client.get_metric_history(r.info.run_id, "train.loss")
    assert [m.step for m in loss] == [1, 2]
    assert [m.value for m in loss] == pytest.approx([h["loss"] for h in metrics["history"]])
    per_epoch = client.get_metric_history(r.info.run_id, "train.valid.mrr_at_20")
    assert [m.value for m in per_epoch] == pytest.approx(
        [h["valid"]["mrr@20"] for h in metrics["history"]]
    )
    files = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"metrics.json", "config.resolved.toml", "artifact"} <= files
    # seqrec's own outputs: the same as without tracking, and no trace of it in the config
    plain = tmp_path / "plain"
    assert main(["run", str(exp), "--out", str(plain), "--no-progress"]) == 0
    assert sorted(p.name for p in plain.iterdir()) == sorted(p.name for p in out.iterdir())
    assert "tracking" not in (out / "config.resolved.toml").read_text()
    assert load_experiment(plain / "config.resolved.toml") == cfg
    again = json.loads((plain / "metrics.json").read_text())
    assert again["test"]["metrics"] == metrics["test"]["metrics"]


def test_tracking_is_not_part_of_the_point(tmp_path: Path) -> None:
    exp = _file(tmp_path, '[grid]\n"model.layers" = [[4], [8]]\n')
    plain = grid(exp)
    tracked = grid(load_experiment(exp, [f'tracking.mlflow="{tmp_path / "m"}"']))
    assert all(c.tracking is not None for c in tracked)
    assert [point_id(c) for c in tracked] == [point_id(c) for c in plain]
    res = run_grid(tracked, tmp_path / "g", progress=False, jobs=2)  # workers share the store
    assert [r.status for r in res] == ["new", "new"]
    # a resume with tracking off (or on) is the same run: nothing is rerun
    again = run_grid(plain, tmp_path / "g", progress=False, resume=True)
    assert [r.status for r in again] == ["finished", "finished"]
    client = _client(tmp_path / "m")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert sorted(r.data.tags["seqrec.point"] for r in runs) == sorted(point_id(c) for c in plain)
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_logging_failure_is_a_warning_not_a_lost_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mlflow.exceptions import MlflowException

    def broken(*a: object, **k: object) -> None:
        raise MlflowException("the store is gone (test)")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", broken)
    cfg = load_experiment(_file(tmp_path), [f'tracking.mlflow="{tmp_path / "m"}"'])
    with caplog.at_level(logging.WARNING, logger="seqrec"):
        res = run_one(cfg, tmp_path / "run", progress=False)
    assert res.status == "new" and (tmp_path / "run" / "metrics.json").is_file()
    assert "MLflow tracking of" in caplog.text and "the store is gone" in caplog.text


def test_missing_mlflow_is_a_clear_error_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = _file(tmp_path, f'[tracking]\nmlflow = "{tmp_path / "m"}"\n')
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'seqrec\[mlflow\]'"):
        run_one(load_experiment(exp), tmp_path / "run")
    assert main(["run", str(exp), "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "run").exists() and not (tmp_path / "cli").exists()


def test_bad_tracking_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="uri"):
        load_experiment(_file(tmp_path, '[tracking]\nmlflow = "x"\nuri = "y"\n'))
    with pytest.raises(ConfigError, match="mlflow"):
        load_experiment(_file(tmp_path, "[tracking]\nartifacts = false\n", name="b.toml"))


def test_a_pruned_optuna_trial_is_tagged_pruned(tmp_path: Path) -> None:
    pytest.importorskip("optuna", reason="the optuna extra is not installed")
    from seqrec.experiment import run_optuna

    exp = _file(
        tmp_path,
        '[grid]\n"train.learning_rate" = {low = 0.00001, high = 0.5, log = true}\n'
        '[search]\nmethod = "optuna"\nn = 6\nsampler = "random"\nseed = 0\n'
        "pruner_startup_trials = 1\n"
        f'[tracking]\nmlflow = "{tmp_path / "m"}"\nartifacts = false\n',
        base=TWO_EPOCHS.replace("epochs = 2", "epochs = 3"),
    )
    res = run_optuna(load_experiment(exp), tmp_path / "o", progress=False)
    client = _client(tmp_path / "m")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    for r in res:
        logged = by_name[r.out_dir.name]
        assert logged.data.tags["seqrec.status"] == r.status
        assert logged.info.status == ("KILLED" if r.status == "pruned" else "FINISHED")
    assert any(r.status == "pruned" for r in res)
