"""A saved run's data re-derived by the library (seqrec.experiment.prepare): run_split,
evaluation_data and EvaluationData.evaluate, the logic behind ``seqrec evaluate``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from _configs import TINY
from seqrec.exceptions import ConfigError, DataError
from seqrec.experiment import (
    DataConfig,
    EvaluationData,
    SyntheticConfig,
    evaluation_data,
    experiment_of,
    find_run_config,
    load_experiment,
    prepare_data,
    run_one,
    run_split,
)
from seqrec.recommender import Recommender


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("evaldata")
    (root / "tiny.toml").write_text(TINY)
    try:
        yield run_one(load_experiment(root / "tiny.toml"), root / "run", progress=False)
    finally:
        torch.set_num_threads(old)


def test_run_split_is_the_runs_split(tiny_run) -> None:
    out = tiny_run.out_dir
    want, _ = prepare_data(tiny_run.config)
    for source in (out, out / "artifact", out / "config.resolved.toml", tiny_run.config):
        got = run_split(source)
        assert got.train.equals(want.train) and got.test.equals(want.test)
        assert got.valid is not None and want.valid is not None and got.valid.equals(want.valid)
        assert got.protocol["counts"] == tiny_run.metrics["data"]["split"]
    assert find_run_config(out / "artifact") == out / "config.resolved.toml"
    assert find_run_config(out.parent) is None


def test_evaluation_data_reproduces_the_runs_metrics(tiny_run) -> None:
    rec = Recommender.load(tiny_run.out_dir / "artifact")
    for part in ("test", "valid"):
        data = evaluation_data(tiny_run.out_dir, part)
        assert isinstance(data, EvaluationData) and data.part == part
        assert data.experiment == tiny_run.config and data.eval == tiny_run.config.eval
        report = data.evaluate(rec)
        assert report.metrics == pytest.approx(tiny_run.metrics[part]["metrics"])
        assert report.protocol["split"] == part
        assert report.protocol["data_split"]["method"] == "split_by_time"
    # settings left None take the experiment's; given ones win
    report = evaluation_data(tiny_run.out_dir).evaluate(rec, metrics=["recall@5"], ties="average")
    assert set(report.metrics) == {"recall@5"} and report.protocol["ties"] == "average"


def test_evaluation_data_overrides_and_other_data(tiny_run) -> None:
    out = tiny_run.out_dir
    loo = evaluation_data(out, "test", overrides=["split.method=leave-one-out"])
    assert loo.split_protocol["method"] == "leave_last_out"
    other = DataConfig(dataset="synthetic", synthetic=SyntheticConfig(n_sessions=80, n_items=20))
    data = evaluation_data(out, "test", data=other)
    assert data.data == other and data.experiment is not None and data.experiment.data == other
    assert data.experiment.split == tiny_run.config.split  # same split, other events
    assert data.frame.height != evaluation_data(out, "test").frame.height


def test_evaluation_data_all(tiny_run) -> None:
    other = DataConfig(dataset="synthetic", synthetic=SyntheticConfig(n_sessions=30, n_items=20))
    data = evaluation_data(None, "all", data=other)
    assert data.split_protocol["method"] == "none" and data.experiment is None
    assert data.frame.height > 0 and "is_target" not in data.frame.columns
    report = data.evaluate(Recommender.load(tiny_run.out_dir / "artifact"))
    assert report.n_queries > 0 and report.protocol["split"] == "all"
    # without other data: the experiment's own events as read, not preprocessed
    own = evaluation_data(tiny_run.out_dir, "all")
    assert own.frame.height == tiny_run.metrics["data"]["read"]["events"]


def test_evaluation_data_errors(tiny_run, tmp_path: Path) -> None:
    bare = shutil.copytree(tiny_run.out_dir / "artifact", tmp_path / "model")
    with pytest.raises(ConfigError, match="config.resolved.toml"):
        evaluation_data(bare, "test")
    with pytest.raises(ConfigError, match="needs the experiment"):
        evaluation_data(None, "test")
    with pytest.raises(ConfigError, match="needs data"):
        evaluation_data(None, "all")
    with pytest.raises(ConfigError, match="part must be"):
        evaluation_data(tiny_run.out_dir, "train")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="overrides need"):
        evaluation_data(None, "all", overrides=["train.epochs=1"])
    with pytest.raises(DataError, match="no valid part"):
        evaluation_data(tiny_run.out_dir, "valid", overrides=["split.valid_days=0"])
    with pytest.raises(ConfigError, match="model.layerz"):
        experiment_of(tiny_run.config, ["model.layerz=[3]"])
