"""Per-query results of every run and the paired test between runs (seqrec.significance,
``seqrec compare``): alignment across evaluation orders, identical runs, a planted
difference, protocol mismatches, old runs without per-query results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from _configs import TINY, TINY_BASKETS
from seqrec.cli import main
from seqrec.evaluate import QUERY_KEYS
from seqrec.exceptions import ConfigError, DataError
from seqrec.experiment import load_experiment, load_run, prepare_data, run_one
from seqrec.experiment.files import QUERIES_DIR, partial_dir
from seqrec.recommender import Recommender
from seqrec.significance import paired_test, read_queries, wilcoxon_p


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GRU4Rec (replayed session-parallel), popularity and SKNN (prefix queries) on one
    split; GRU4Rec again under optimistic ties; popularity on other synthetic data."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("significance")
    exp = root / "t.toml"
    exp.write_text(TINY)
    for name, over in [
        ("gru", []),
        ("pop", ["model.name=pop"]),
        ("sknn", ["model.name=sknn"]),
        ("gru_optimistic", ["eval.ties=optimistic"]),
        ("pop_other_data", ["model.name=pop", "data.synthetic.seed=2"]),
    ]:
        run_one(load_experiment(exp, over), root / name, progress=False)
    torch.set_num_threads(old)
    return root


def _keys(task: str = "next-item") -> list[str]:
    return list(QUERY_KEYS[task])


def test_every_run_saves_per_query_values_matching_its_metrics(runs: Path) -> None:
    for name in ("gru", "pop", "sknn"):
        metrics = json.loads((runs / name / "metrics.json").read_text())
        for part in ("valid", "test"):
            q = read_queries(runs / name, part)
            assert q.height == metrics[part]["n_queries"] > 50
            assert q.schema["sequence"] == pl.Int32 and q.schema["position"] == pl.Int32
            assert q.schema["rank"] == pl.Float32 and q.schema["mrr@20"] == pl.Float32
            assert q.select(_keys()).is_duplicated().sum() == 0
            assert (q["position"] >= 1).all()  # a target has at least one event before it
            for m, v in metrics[part]["metrics"].items():
                assert q[m].mean() == pytest.approx(v, abs=1e-6), (name, part, m)
            r = q["rank"].to_numpy()
            assert np.allclose(q["mrr@20"].to_numpy(), np.where(r <= 20, 1 / r, 0), atol=1e-6)
    # GRU4Rec replays sessions in parallel: another order, the same keys
    gru, pop = read_queries(runs / "gru"), read_queries(runs / "pop")
    assert not gru.select(_keys()).equals(gru.select(_keys()).sort(_keys()))
    assert gru.select(_keys()).sort(_keys()).equals(pop.select(_keys()).sort(_keys()))


def test_replay_and_prefix_scoring_align_query_by_query(runs: Path) -> None:
    cfg = load_experiment(runs / "gru" / "config.resolved.toml")
    split, _ = prepare_data(cfg)
    rec = Recommender.load(runs / "gru" / "artifact")
    a = rec.evaluate(split.test, replay=True, per_query=True).queries
    b = rec.evaluate(split.test, replay=False, per_query=True).queries
    assert a is not None and b is not None and not a.equals(b)  # different order
    a, b = a.sort(_keys()), b.sort(_keys())
    assert a.select(_keys()).equals(b.select(_keys()))
    np.testing.assert_allclose(a["rank"].to_numpy(), b["rank"].to_numpy(), rtol=1e-5)
    plain = rec.evaluate(split.test)
    assert plain.queries is None and "queries" not in plain.to_dict()


def test_unknown_targets_are_keyed_misses() -> None:
    cfg = load_experiment_text(TINY)
    split, _ = prepare_data(cfg)
    rec = Recommender(load_experiment_text(TINY, ["model.name=pop"]).model).fit(split.train)
    test = split.test
    row = int(np.flatnonzero(test["is_target"].to_numpy())[0])
    items = test["item_id"].to_numpy().copy()
    items[row] = 10**9  # an item no model knows
    rep = rec.evaluate(test.with_columns(pl.Series("item_id", items)), per_query=True)
    q = rep.queries
    assert q is not None and q.height == rep.n_queries
    miss = q.filter(pl.col("sequence") == -1)
    assert miss.height == 1 and miss["rank"][0] == float("inf") and miss["mrr@20"][0] == 0.0
    assert q["mrr@20"].mean() == pytest.approx(rep.metrics["mrr@20"], abs=1e-6)


def load_experiment_text(text: str, overrides: list[str] | None = None):  # noqa: ANN201
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.toml"
        p.write_text(text)
        return load_experiment(p, overrides or [])


def test_identical_runs_differ_by_nothing(runs: Path) -> None:
    t = paired_test(runs / "gru", runs / "gru", metric="mrr@20")
    assert t.difference == 0.0 and t.ci_low == 0.0 and t.ci_high == 0.0
    assert t.p_value == 1.0 and t.n_differing == 0 and not t.significant
    assert t.n == read_queries(runs / "gru").height


def test_a_better_model_has_an_interval_above_zero(runs: Path) -> None:
    t = paired_test(runs / "gru", runs / "pop", metric="mrr@20", n_boot=1000, seed=1)
    m = {n: json.loads((runs / n / "metrics.json").read_text()) for n in ("gru", "pop")}
    assert t.mean_a == pytest.approx(m["gru"]["test"]["metrics"]["mrr@20"], abs=1e-6)
    assert t.mean_b == pytest.approx(m["pop"]["test"]["metrics"]["mrr@20"], abs=1e-6)
    assert t.difference == pytest.approx(t.mean_a - t.mean_b)
    assert 0 < t.ci_low < t.difference < t.ci_high and t.significant
    assert t.p_value < 1e-6
    back = paired_test(runs / "pop", runs / "gru", metric="mrr@20", n_boot=1000, seed=1)
    assert back.difference == pytest.approx(-t.difference) and back.ci_high < 0
    again = paired_test(runs / "gru", runs / "pop", metric="mrr@20", n_boot=1000, seed=1)
    assert (again.ci_low, again.ci_high) == (t.ci_low, t.ci_high)  # seeded


def _planted(runs: Path, dest: Path, shift: np.ndarray) -> Path:
    """A copy of the popularity run whose per-query mrr@20 is moved by ``shift``."""
    shutil.copytree(runs / "pop", dest)
    f = dest / QUERIES_DIR / "test.parquet"
    q = pl.read_parquet(f).sort(_keys())
    q = q.with_columns(pl.Series("mrr@20", q["mrr@20"].to_numpy() + shift.astype(np.float32)))
    q.sample(fraction=1.0, shuffle=True, seed=3).write_parquet(f)  # another row order
    return dest


def test_planted_shift_and_planted_noise(runs: Path, tmp_path: Path) -> None:
    n = read_queries(runs / "pop").height
    better = _planted(runs, tmp_path / "better", np.full(n, 0.05))
    t = paired_test(better, runs / "pop", metric="mrr@20")
    assert t.difference == pytest.approx(0.05, abs=1e-6)
    assert t.ci_low == pytest.approx(0.05, abs=1e-6) and t.p_value < 1e-10
    k = n // 2
    noise = np.zeros(n)
    noise[:k], noise[k : 2 * k] = 0.05, -0.05  # as many queries up as down
    noisy = _planted(runs, tmp_path / "noisy", noise[np.random.default_rng(0).permutation(n)])
    t = paired_test(noisy, runs / "pop", metric="mrr@20")
    assert t.ci_low < 0 < t.ci_high and not t.significant and t.p_value > 0.5


def test_seeds_are_averaged_per_query(runs: Path, tmp_path: Path) -> None:
    n = read_queries(runs / "pop").height
    up = _planted(runs, tmp_path / "up", np.full(n, 0.1))
    down = _planted(runs, tmp_path / "down", np.full(n, -0.1))
    t = paired_test([up, down], runs / "pop", metric="mrr@20")  # two "seeds": mean 0
    assert t.difference == pytest.approx(0.0, abs=1e-6) and t.runs_a == [up, down]
    t = paired_test([up, runs / "pop"], [runs / "pop"], metric="mrr@20")
    assert t.difference == pytest.approx(0.05, abs=1e-6)


def test_different_protocols_or_data_are_errors_naming_the_cause(runs: Path) -> None:
    with pytest.raises(ConfigError, match="ties"):
        paired_test(runs / "gru", runs / "gru_optimistic")
    with pytest.raises(ConfigError, match="fingerprint"):
        paired_test(runs / "pop", runs / "pop_other_data")


def test_runs_without_or_with_misaligned_per_query_results(runs: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(runs / "pop", old)
    shutil.rmtree(old / QUERIES_DIR)  # a run written before per-query results
    assert load_run(old).reports["test"].metrics  # still loads
    with pytest.raises(DataError, match="no per-query results.*run it again"):
        paired_test(runs / "gru", old)
    cut = tmp_path / "cut"
    shutil.copytree(runs / "pop", cut)
    f = cut / QUERIES_DIR / "test.parquet"
    pl.read_parquet(f).head(-1).write_parquet(f)
    with pytest.raises(DataError, match="do not align"):
        paired_test(runs / "gru", cut)
    with pytest.raises(ConfigError, match="did not compute"):
        paired_test(runs / "gru", runs / "pop", metric="mrr@5")


def test_a_resumed_finished_partial_keeps_its_per_query_results(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "pop"
    shutil.copytree(runs / "pop", partial_dir(out))  # killed while renaming into place
    cfg = load_experiment(runs / "pop" / "config.resolved.toml")
    res = run_one(cfg, out, progress=False, resume=True)
    assert res.status == "resumed" and (out / QUERIES_DIR / "test.parquet").is_file()
    assert paired_test(out, runs / "pop").p_value == 1.0


def test_wilcoxon_edge_cases() -> None:
    assert wilcoxon_p(np.zeros(5)) == 1.0
    assert np.isnan(wilcoxon_p(np.zeros(0)))
    assert wilcoxon_p(np.r_[np.ones(30), np.zeros(10)]) < 1e-5


def test_next_basket_per_user_values_and_test(tmp_path: Path) -> None:
    exp = tmp_path / "b.toml"
    exp.write_text(TINY_BASKETS)
    a = run_one(load_experiment(exp, ["model.k=2"]), tmp_path / "k2", progress=False)
    b = run_one(load_experiment(exp, ["model.k=50"]), tmp_path / "k50", progress=False)
    q = read_queries(a.out_dir)
    assert set(_keys("next-basket")) <= set(q.columns) and "f1_user" in q.columns
    assert q.height == a.metrics["test"]["n_queries"]
    for m in ("recall@10", "precision@10", "ndcg@10", "phr@10", "repeat_recall@10"):
        want = a.metrics["test"]["metrics"][m]
        got = q[m].fill_nan(None).mean()  # repeat recall: NaN for users without repeats
        assert got == pytest.approx(want, abs=1e-6), m
    t = paired_test(a.out_dir, b.out_dir, metric="recall@10")
    assert t.n == q.height and t.difference == pytest.approx(
        a.metrics["test"]["metrics"]["recall@10"] - b.metrics["test"]["metrics"]["recall@10"],
        abs=1e-6,
    )
    with pytest.raises(ConfigError, match="pooled.*f1_user"):
        paired_test(a.out_dir, b.out_dir, metric="f1_micro")


def test_cli_compare(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", str(runs / "gru"), str(runs / "pop"), "--metric", "mrr@20"]
    assert main([*argv, "--json", "--n-boot", "500"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["ci_low"] > 0 and got["significant"] and got["n_boot"] == 500
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "paired-bootstrap CI" in text and "Wilcoxon" in text
    assert main(["compare", str(runs / "gru"), str(runs / "gru_optimistic")]) == 2
    assert "ties" in capsys.readouterr().err
