"""The Python mirror of ``seqrec run``: a polars frame of the results, as summary.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from _configs import TINY
from seqrec.exceptions import ConfigError
from seqrec.experiment import load_experiment, load_run, run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    p = tmp_path / "t.toml"
    p.write_text(TINY)
    return p


def test_one_run_is_a_one_row_frame(exp: Path, tmp_path: Path) -> None:
    df = run(exp, tmp_path / "one", overrides=["model.layers=[6]"])
    assert isinstance(df, pl.DataFrame) and df.height == 1
    row = df.row(0, named=True)
    assert row["status"] == "new" and row["run"] == "one"
    saved = load_run(row["out_dir"])
    assert saved.config.model.layers == [6]
    assert row["test.recall@20"] == pytest.approx(saved.metrics["test"]["metrics"]["recall@20"])
    # as the command: a second call without resume refuses, with resume reuses
    again = run(exp, tmp_path / "one", overrides=["model.layers=[6]"], resume=True)
    assert again["status"].to_list() == ["finished"]


def test_search_frame_equals_summary_csv(exp: Path, tmp_path: Path) -> None:
    df = run(
        exp,
        tmp_path / "g",
        space={"model.layers": [[4], [8]]},
        overrides=["search.n_seeds=2"],
    )
    assert df.height == 4
    assert df["model.layers"].to_list() == ["[4]", "[4]", "[8]", "[8]"]
    assert df["seed"].to_list() == [0, 1, 0, 1]
    rows = list(csv.DictReader((tmp_path / "g" / "summary.csv").open()))
    assert [r["run"] for r in rows] == df["run"].to_list()
    for r, v in zip(rows, df["test.mrr@20"].to_list(), strict=True):
        assert float(r["test.mrr@20"]) == pytest.approx(v)


def test_a_config_object_and_max_runs(exp: Path, tmp_path: Path) -> None:
    cfg = load_experiment(exp)
    with pytest.raises(ConfigError, match="max_runs"):
        run(cfg, tmp_path / "x", space={"train.epochs": [1, 2, 3]}, max_runs=2)
    assert not (tmp_path / "x").exists()  # refused before anything ran
    df = run(cfg, tmp_path / "y", overrides=["train.epochs=2"])
    assert load_run(df["out_dir"][0]).config.train.epochs == 2
