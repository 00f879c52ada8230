"""Next-basket end to end: experiment files, CLI run / evaluate / recommend, the Python API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from seqrec.cli import main
from seqrec.exceptions import ConfigError, DataError
from seqrec.experiment import load_experiment, run_one
from seqrec.recommender import Recommender

DATA = Path(os.environ.get("SEQREC_DATA", "../shared/data"))

SYNTH = """
name = "{name}"
[data]
dataset = "synthetic-baskets"
[data.synthetic_baskets]
n_users = 200
n_items = 120
mean_baskets = 8.0
max_baskets = 20
mean_size = 6.0
n_staples = 6.0
[preprocess]
min_session_length = 1
min_item_support = 1
[split]
method = "leave-one-out"
[model]
name = "{model}"
[eval]
metrics = {metrics}
{extra}
"""


def _write(
    tmp: Path, name: str, model: str = "gp-topfreq", metrics: str = "[]", extra: str = ""
) -> Path:
    if metrics == "[]":
        text = SYNTH.replace("metrics = {metrics}\n", "")
    else:
        text = SYNTH
    p = tmp / f"{name}.toml"
    p.write_text(text.format(name=name, model=model, metrics=metrics, extra=extra))
    return p


def test_experiment_defaults_to_basket_metrics_and_runs(tmp_path, capsys):
    cfg = load_experiment(_write(tmp_path, "nb"))
    assert "f1_micro" in cfg.eval.metrics and "recall@10" in cfg.eval.metrics
    assert main(["run", str(_write(tmp_path, "nb")), "--out", str(tmp_path / "runs" / "nb")]) == 0
    metrics = json.loads((tmp_path / "runs" / "nb" / "metrics.json").read_text())
    test = metrics["test"]
    assert test["protocol"]["task"] == "next-basket"
    assert test["protocol"]["data_split"]["unit"] == "basket"
    assert test["n_queries"] == 200  # every user evaluated
    assert test["metrics"]["recall@10"] > 0.3  # staples are found again
    # recommend a user's next basket from the run's data, and from explicit baskets
    capsys.readouterr()
    assert (
        main(["recommend", str(tmp_path / "runs" / "nb"), "--user", "3", "-k", "5", "--json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5] and rows[0]["bought_before"]
    rec = Recommender.load(tmp_path / "runs" / "nb" / "artifact")
    item = int(rec.vocab_.decode(np.array([1]))[0])
    assert (
        main(
            [
                "recommend",
                str(tmp_path / "runs" / "nb"),
                "--baskets",
                f"{item}",
                f"{item},-5",
                "-k",
                "3",
            ]
        )
        == 0
    )
    assert main(["evaluate", str(tmp_path / "runs" / "nb")]) == 0


def test_bad_basket_configs_and_requests(tmp_path, capsys):
    with pytest.raises(ConfigError, match="next-basket metric"):
        load_experiment(_write(tmp_path, "a", metrics='["mrr@20"]'))
    with pytest.raises(ConfigError, match="next-basket models only"):
        load_experiment(_write(tmp_path, "b", model="pop", extra="threshold = 0.3"))
    with pytest.raises(ConfigError, match="threshold must be in"):
        load_experiment(_write(tmp_path, "c", extra="threshold = 1.5"))
    with pytest.raises(ConfigError, match="sampled negatives"):
        load_experiment(_write(tmp_path, "d", extra="candidates = 100"))
    assert main(["run", str(_write(tmp_path, "e")), "--out", str(tmp_path / "runs" / "e")]) == 0
    capsys.readouterr()
    assert main(["recommend", str(tmp_path / "runs" / "e"), "--items", "1001"]) == 2
    assert "predicts next baskets" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path / "runs" / "e"), "--user", "999999"]) == 2
    assert "no such user" in capsys.readouterr().err
    rec = Recommender.load(tmp_path / "runs" / "e" / "artifact")
    with pytest.raises(DataError, match="list of lists"):
        rec.recommend([1001, 1002])
    from seqrec.experiment import run_split
    from seqrec.models.popularity import PopularityConfig

    part = run_split(load_experiment(_write(tmp_path, "f"))).test
    with pytest.raises(ConfigError, match="next-basket evaluation only"):  # pop on events
        pop = Recommender(PopularityConfig()).fit(part.drop("basket_id"))
        pop.evaluate(part.drop("basket_id"), threshold=0.3)


def test_threshold_valid_with_a_baseline_keeps_its_set_rule(tmp_path):
    cfg = load_experiment(_write(tmp_path, "t2", model="gp-topfreq", extra='threshold = "valid"'))
    run_one(cfg, tmp_path / "runs" / "t2", progress=False)
    m = json.loads((tmp_path / "runs" / "t2" / "metrics.json").read_text())
    # baselines' scores are not probabilities: their set rule ignores the threshold
    assert "mean history basket size" in m["test"]["protocol"]["set_rule"]


@pytest.mark.skipif(
    not (DATA / "instacart" / "orders.csv.gz").is_file(), reason="Instacart sample not present"
)
def test_instacart_config_parses_and_names_the_protocol():
    cfg = load_experiment(Path(__file__).parents[1] / "configs" / "instacart_tifu.toml")
    assert cfg.model.name == "tifu-knn" and cfg.split.method == "leave-one-out"


def test_reference_grid_config_expands_to_the_notebook_grid():
    from seqrec.experiment import grid

    cfg = load_experiment(Path(__file__).parents[1] / "configs" / "instacart_notebook_grid.toml")
    points = list(grid(cfg))
    assert len(points) == 3 * 2 * 3 * 2 * 2 * 2 * 2
    assert {p.eval.threshold for p in points} == {0.4, "valid"}
    assert {p.model.encoder for p in points} == {"cnn", "attention"}
    assert all("f1_micro" in p.eval.metrics for p in points)
