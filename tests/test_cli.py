"""The ``seqrec`` command line, driven in-process through ``main([...])``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from _configs import TINY
from seqrec.cli import main
from seqrec.data.synthetic import synthetic_sessions
from seqrec.recommender import Recommender

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


SUBCOMMANDS = ["demo", "run", "train", "stats", "evaluate", "recommend"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory made by ``seqrec run`` on the tiny synthetic config."""
    root = tmp_path_factory.mktemp("cli")
    cfg = root / "tiny.toml"
    cfg.write_text(TINY)
    assert main(["run", str(cfg), "--out", str(root / "run"), "--no-progress"]) == 0
    return root / "run"


def _sessions_csv(path: Path, *, n: int = 40, seed: int = 7) -> pl.DataFrame:
    """Sessions over the same synthetic catalogue, shuffled rows, one unknown item."""
    df = synthetic_sessions(n, 20, seed=seed).sample(fraction=1.0, shuffle=True, seed=3)
    extra = pl.DataFrame({"session_id": [10_000], "item_id": [999_999], "timestamp": [1.7e9]})
    df = pl.concat([df, extra])
    df.write_csv(path)
    return df


def _expected(
    rec: Recommender, df: pl.DataFrame, k: int, exclude_seen: bool = False
) -> pl.DataFrame:
    ordered = df.sort(["session_id", "timestamp"], maintain_order=True)
    groups = ordered.group_by("session_id", maintain_order=True).agg(pl.col("item_id"))
    res = rec.recommend_many(groups["item_id"].to_list(), k, exclude_seen=exclude_seen)
    rows = [
        (sid, r + 1, int(item), float(score))
        for sid, (ids, scores) in zip(groups["session_id"].to_list(), res, strict=True)
        for r, (item, score) in enumerate(zip(ids, scores, strict=True))
    ]
    return pl.DataFrame(rows, schema=["session_id", "rank", "item_id", "score"], orient="row")


# ----------------------------------------------------------------------------- help
def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "run", "stats", "evaluate", "recommend", "examples:"):
        assert cmd in out


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_subcommand_help_has_examples(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"seqrec {cmd if cmd != 'train' else 'run'}" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2


# ----------------------------------------------------------------------------- demo
def test_demo_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "demo",
            "--sessions",
            "300",
            "--items",
            "30",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "d"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "GRU4Rec" in out and "popularity" in out and "Recall@20" in out and "MRR@20" in out
    assert (tmp_path / "d" / "gru4rec" / "metrics.json").is_file()
    assert (tmp_path / "d" / "pop" / "artifact").is_dir()
    g = json.loads((tmp_path / "d" / "gru4rec" / "metrics.json").read_text())
    p = json.loads((tmp_path / "d" / "pop" / "metrics.json").read_text())
    assert g["test"]["metrics"]["recall@20"] > p["test"]["metrics"]["recall@20"]


def test_demo_without_out_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--sessions", "200", "--items", "20", "--epochs", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"gru4rec", "pop"}
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ run
def test_run_writes_run_dir_and_prints_table(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("config.resolved.toml", "metrics.json", "log.txt", "artifact"):
        assert (trained / name).exists()
    # a second run into the same directory is refused with a clear message
    cfg = trained.parent / "tiny.toml"
    assert main(["run", str(cfg), "--out", str(trained)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqrec: error:") and "--overwrite" in err and "Traceback" not in err


def test_run_with_set_and_train_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                str(cfg),
                "--set",
                "model.name=pop",
                "--set",
                "name=tinypop",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "recall@20" in text and "valid" in text and "test" in text
    assert 'name = "pop"' in (out / "config.resolved.toml").read_text()


def test_run_grid_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    out = tmp_path / "g"
    assert main(["run", str(cfg), "--grid", "model.layers=[4],[8]", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("tiny-") >= 2 and "model.layers" in text and "seeds" in text
    assert (out / "summary.csv").is_file()
    assert pl.read_csv(out / "summary.csv").height == 2


def test_run_unknown_config_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(TINY.replace("layers = [8]", "layerz = [8]"))
    assert main(["run", str(cfg), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "seqrec: error:" in err and "model.layerz" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    assert main(["run", str(tmp_path / "bad.toml"), "--set", "train.epoch=3"]) == 2
    assert "train.epoch" in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqrec: error:") and "missing.toml" in err and "Traceback" not in err
    assert main(["stats", str(tmp_path / "missing.csv")]) == 2
    assert "seqrec: error:" in capsys.readouterr().err
    assert main(["recommend", str(tmp_path / "no-model"), "--items", "1"]) == 2
    assert "seqrec: error:" in capsys.readouterr().err


def test_debug_reraises(tmp_path: Path) -> None:
    from seqrec.exceptions import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "run", str(tmp_path / "missing.toml")])


# ---------------------------------------------------------------------------- stats
def test_stats_synthetic_clean_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "synthetic", "--clean", "--min-item-support", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["raw"]["events"] >= res["cleaned"]["events"] > 0
    assert main(["stats", "synthetic", "--clean"]) == 0
    out = capsys.readouterr().out
    assert "raw" in out and "cleaned" in out and "session_length.median" in out


def test_stats_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "log.csv"
    synthetic_sessions(50, 10, seed=0).write_csv(f)
    assert main(["stats", str(f)]) == 0
    assert "events" in capsys.readouterr().out


# ------------------------------------------------------------------------- evaluate
def test_evaluate_run_dir_reproduces_metrics(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(trained), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    saved = json.loads((trained / "metrics.json").read_text())
    assert report["metrics"] == pytest.approx(saved["test"]["metrics"])
    assert report["protocol"]["split"] == "test"
    assert (
        main(
            [
                "evaluate",
                str(trained / "artifact"),
                str(trained / "config.resolved.toml"),
                "--split",
                "valid",
                "--metrics",
                "recall@10",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "recall@10" in out and "valid" in out


def test_evaluate_file_split_all(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "test.csv"
    synthetic_sessions(30, 20, seed=1).write_csv(f)
    assert main(["evaluate", str(trained / "artifact"), str(f), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_queries"] > 0 and report["protocol"]["data_split"]["method"] == "none"
    # a bare model directory (outside a run) has no experiment to split DATA with
    import shutil

    bare = shutil.copytree(trained / "artifact", tmp_path / "model")
    assert main(["evaluate", str(bare), str(f)]) == 2
    assert "--split all" in capsys.readouterr().err


def test_evaluate_is_the_library_evaluation(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from seqrec.experiment import evaluation_data

    args = ["--split", "valid", "--set", "split.method=leave-one-out", "--ties", "average"]
    assert main(["evaluate", str(trained / "artifact"), *args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    data = evaluation_data(trained, "valid", overrides=["split.method=leave-one-out"])
    want = data.evaluate(Recommender.load(trained / "artifact"), ties="average").to_dict()
    assert got["metrics"] == pytest.approx(want["metrics"])
    assert got["protocol"]["data_split"]["method"] == "leave_last_out"
    assert got["protocol"]["ties"] == "average"


def test_evaluate_usage_errors(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bare = str(shutil.copytree(trained / "artifact", tmp_path / "model"))
    cases = [
        ([bare, "--set", "train.epochs=1"], "--set needs an experiment"),
        ([bare, "--split", "all"], "--split all needs DATA"),
        ([bare], "no config.resolved.toml"),
        ([str(trained), "--candidates", "many"], "--candidates must be 'full' or a number"),
        ([str(trained), "no-such-data.csv"], "neither a registered dataset"),
    ]
    for argv, needle in cases:
        assert main(["evaluate", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("seqrec: error:") and needle in err and "Traceback" not in err


def test_every_subcommand_module_has_its_parser_and_handler() -> None:
    from seqrec.cli.app import SUBCOMMANDS

    for module in SUBCOMMANDS:
        name = module.__name__.rsplit(".", 1)[1]
        assert callable(module.add_parser) and callable(getattr(module, f"cmd_{name}"))


# ------------------------------------------------------------------------ recommend
def test_recommend_single_session(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recommender.load(trained / "artifact")
    items = [str(i) for i in rec.vocab_.ids[:3].tolist()]
    assert main(["recommend", str(trained), "--items", *items, "-k", "5", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = rec.recommend([int(i) for i in items], k=5, exclude_seen=True)  # the CLI default
    assert [r["item_id"] for r in got] == want["item_id"].to_list()
    assert [r["rank"] for r in got] == [1, 2, 3, 4, 5]
    assert main(["recommend", str(trained), "--items", *items, "424242", "-k", "3"]) == 0
    cap = capsys.readouterr()
    assert "rank" in cap.out and "item_id" in cap.out and "score" in cap.out
    assert "unknown" in cap.err
    assert main(["recommend", str(trained), "--items", "424242", "--unknown", "error"]) == 2
    assert "seqrec: error:" in capsys.readouterr().err


def test_recommend_batch_csv_matches_recommend_many(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _sessions_csv(tmp_path / "sessions.csv")
    out = tmp_path / "recs.csv"
    code = main(
        [
            "recommend",
            str(trained),
            "--input",
            str(tmp_path / "sessions.csv"),
            "--output",
            str(out),
            "-k",
            "7",
            "--batch-size",
            "8",
            "--no-exclude-seen",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "1 with unknown items dropped" in err and "1 sessions had no known item" in err
    got = pl.read_csv(out)
    assert got.columns == ["session_id", "rank", "item_id", "score"]
    rec = Recommender.load(trained / "artifact")
    want = _expected(rec, df, 7)
    assert got.height == want.height == df["session_id"].n_unique() * 7
    assert got.select("session_id", "rank", "item_id").equals(
        want.select("session_id", "rank", "item_id")
    )
    np.testing.assert_allclose(
        got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-5, atol=1e-6
    )
    assert not list(tmp_path.glob(".recs.csv*"))


def test_recommend_batch_parquet_exclude_seen_custom_columns(trained: Path, tmp_path: Path) -> None:
    df = synthetic_sessions(25, 20, seed=4)
    df.rename({"session_id": "SessionId", "item_id": "ItemId", "timestamp": "Time"}).write_parquet(
        tmp_path / "s.parquet"
    )
    out = tmp_path / "recs.parquet"
    args = [
        "recommend",
        str(trained),
        "--input",
        str(tmp_path / "s.parquet"),
        "--output",
        str(out),
        "--session-col",
        "SessionId",
        "--item-col",
        "ItemId",
        "--time-col",
        "Time",
        "-k",
        "4",
        "--exclude-seen",
    ]
    assert main(args) == 0
    got = pl.read_parquet(out)
    want = _expected(Recommender.load(trained / "artifact"), df, 4, exclude_seen=True)
    assert got.select("session_id", "rank", "item_id").equals(
        want.select("session_id", "rank", "item_id")
    )
    seen = df.group_by("session_id").agg(pl.col("item_id").alias("seen"))
    joined = got.join(seen, on="session_id")
    assert not any(i in s for i, s in zip(joined["item_id"], joined["seen"], strict=True))


def test_recommend_batch_errors_leave_no_output(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _sessions_csv(tmp_path / "s.csv")
    out = tmp_path / "recs.csv"
    assert (
        main(
            [
                "recommend",
                str(trained),
                "--input",
                str(tmp_path / "s.csv"),
                "--output",
                str(out),
                "--unknown",
                "error",
            ]
        )
        == 2
    )
    assert "unknown" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".recs.csv*"))
    assert (
        main(
            [
                "recommend",
                str(trained),
                "--input",
                str(tmp_path / "s.csv"),
                "--output",
                str(out),
                "--item-col",
                "nope",
            ]
        )
        == 2
    )
    assert "nope" in capsys.readouterr().err
    assert main(["recommend", str(trained)]) == 2
    assert "--items" in capsys.readouterr().err


# ------------------------------------------------------------------------ real data
def test_stats_ml100k(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "ml-100k", "--data-dir", str(data_dir), "--clean", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["raw"]["events"] == 100_000 and res["raw"]["users"] == 943
    assert res["cleaned"]["events"] < 100_000


def test_run_ml100k_loo_pop(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEQREC_DATA", str(data_dir))
    out = tmp_path / "pop"
    assert main(["run", str(CONFIGS / "ml100k_loo_pop.toml"), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["protocol"]["data_split"]["method"] == "leave_last_out"
    assert 0.0 < metrics["test"]["metrics"]["recall@20"] < 0.5
    assert "recall@10" in capsys.readouterr().out


def test_session_chunks_never_split_a_session() -> None:
    from seqrec.batch import _session_chunks

    df = synthetic_sessions(60, 10, seed=0).sample(fraction=1.0, shuffle=True, seed=1)
    lf = df.lazy().sort(["session_id", "timestamp"], maintain_order=True)
    chunks = list(_session_chunks(lf, "session_id", 7))
    assert len(chunks) > 1
    keys = [set(c["session_id"].to_list()) for c in chunks]
    assert sum(len(k) for k in keys) == len(set().union(*keys)) == 60
    assert pl.concat(chunks).equals(df.sort(["session_id", "timestamp"]))


def test_recommend_batch_presorted(trained: Path, tmp_path: Path) -> None:
    df = synthetic_sessions(20, 20, seed=5)  # already grouped by session, in time order
    df.write_csv(tmp_path / "s.csv")
    out = tmp_path / "r.tsv"
    assert (
        main(
            [
                "recommend",
                str(trained),
                "--input",
                str(tmp_path / "s.csv"),
                "--output",
                str(out),
                "--sorted",
                "-k",
                "3",
                "--no-exclude-seen",
            ]
        )
        == 0
    )
    got = pl.read_csv(out, separator="\t")
    want = _expected(Recommender.load(trained / "artifact"), df, 3)
    assert got.select("session_id", "rank", "item_id").equals(
        want.select("session_id", "rank", "item_id")
    )
    shuffled = tmp_path / "shuffled.csv"
    df.sample(fraction=1.0, shuffle=True, seed=0).write_csv(shuffled)
    assert (
        main(
            ["recommend", str(trained), "--input", str(shuffled), "--output", str(out), "--sorted"]
        )
        == 2
    )
