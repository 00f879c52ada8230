"""Experiment files, overrides, grids and atomic run directories (seqrec.experiment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _configs import TINY
from seqrec.exceptions import ConfigError, SeqrecError
from seqrec.experiment import (
    DataConfig,
    ExperimentConfig,
    RunExistsError,
    grid,
    load_experiment,
    load_run,
    point_id,
    prepare_data,
    run_grid,
    run_one,
)
from seqrec.recommender import Recommender

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("exp")
    (root / "tiny.toml").write_text(TINY)
    cfg = load_experiment(root / "tiny.toml")
    return run_one(cfg, root / "runs" / "tiny", progress=False)


# ------------------------------------------------------------------------- loading
def test_load_experiment_with_overrides(tiny: Path) -> None:
    cfg = load_experiment(
        tiny, ["model.layers=[200]", "train.epochs=3", "train.learning_rate=0.2", "name=other"]
    )
    assert cfg.model.layers == [200]
    assert cfg.train.epochs == 3
    assert cfg.train.learning_rate == 0.2
    assert cfg.name == "other"
    assert cfg.data.synthetic is not None and cfg.data.synthetic.n_sessions == 150
    # untouched keys keep the file's values, unspecified ones the defaults
    assert cfg.split.test_days == 6
    assert cfg.eval.metrics == ["recall@20", "mrr@20", "ndcg@20"]


def test_override_model_name_switches_model(tiny: Path) -> None:
    cfg = load_experiment(tiny, ["model.name=pop"])
    assert cfg.model.name == "pop"  # GRU4Rec-only keys of the file are dropped


def test_override_plain_string_and_nested_section(tiny: Path) -> None:
    cfg = load_experiment(tiny, ["data.synthetic.n_items=30", "eval.ties=optimistic"])
    assert cfg.data.synthetic is not None and cfg.data.synthetic.n_items == 30
    assert cfg.eval.ties == "optimistic"


def test_yaml_equals_toml(tmp_path: Path, tiny: Path) -> None:
    import yaml

    raw = load_experiment(tiny).to_dict()
    y = tmp_path / "tiny.yaml"
    y.write_text(yaml.safe_dump(raw))
    assert load_experiment(y) == load_experiment(tiny)


def test_model_section_without_name_is_gru4rec(tmp_path: Path) -> None:
    p = tmp_path / "e.toml"
    p.write_text('[data]\ndataset = "synthetic"\n[model]\nlayers = [16]\n')
    assert load_experiment(p).model.name == "gru4rec"


@pytest.mark.parametrize(
    ("text", "needle", "valid"),
    [
        ("[model]\nname = 'gru4rec'\nlayerz = [3]\n", "model.layerz", "layers"),
        ("[trian]\nepochs = 3\n", "trian", "train"),
        ("[data.synthetic]\nn_sesions = 3\n", "data.synthetic.n_sesions", "n_sessions"),
        ("[eval]\nmetric = ['recall@20']\n", "eval.metric", "metrics"),
    ],
)
def test_unknown_key_names_path_and_valid_keys(
    tmp_path: Path, text: str, needle: str, valid: str
) -> None:
    p = tmp_path / "bad.toml"
    base = (
        '[data]\ndataset = "synthetic"\n'
        if not text.startswith("[data.")
        else '[data]\ndataset = "synthetic"\n'
    )
    p.write_text(base + text)
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    msg = str(e.value)
    assert needle in msg
    assert "Valid keys" in msg and valid in msg


@pytest.mark.parametrize(
    ("split", "needle"),
    [
        ("n = 2", "'n' belongs to method 'leave-one-out', not 'time'"),
        ("method = 'leave-one-out'\ntest_days = 3", "'test_days' belongs to method 'time'"),
        ("method = 'ratio'\ncolumn = 'x'", "'column' belongs to method 'presplit'"),
        ("method = 'presplit'\nby = 'event'", "'by' belongs to method 'time'"),
        ("method = 'time'\ntest_dayz = 3", "did you mean 'split.test_days'"),
        ("method = 'random'", "split.method: unknown method 'random'; valid methods: time"),
    ],
)
def test_split_is_a_union_on_method(tmp_path: Path, split: str, needle: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(f'[data]\ndataset = "synthetic"\n[split]\n{split}\n')
    with pytest.raises(ConfigError) as e:
        load_experiment(p)
    assert needle in str(e.value)


def test_split_method_selects_the_config_class(tiny: Path) -> None:
    from seqrec.experiment import (
        SPLITS,
        LeaveOneOutConfig,
        PresplitConfig,
        RatioSplitConfig,
        TimeSplitConfig,
    )

    assert SPLITS == {
        "time": TimeSplitConfig,
        "leave-one-out": LeaveOneOutConfig,
        "ratio": RatioSplitConfig,
        "presplit": PresplitConfig,
    }
    assert isinstance(load_experiment(tiny).split, TimeSplitConfig)
    # no method: "time"; no [split] at all: the time split's defaults
    assert ExperimentConfig.model_validate(
        {"data": {"dataset": "synthetic"}, "split": {"test_days": 3}}
    ).split == TimeSplitConfig(test_days=3)
    assert ExperimentConfig(data=DataConfig(dataset="synthetic")).split == TimeSplitConfig()
    # switching the method drops the old method's keys, keeps keys set with it
    loo = load_experiment(tiny, ["split.method=leave-one-out", "split.n=2"])
    assert loo.split == LeaveOneOutConfig(n=2, valid=True)
    ratio = load_experiment(tiny, ["split.method=ratio"]).split
    assert isinstance(ratio, RatioSplitConfig)
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        load_experiment(tiny, ["split.method=nope"])
    # the resolved config names the method and reloads as the same class
    assert 'method = "leave-one-out"' in loo.to_toml()
    assert grid(loo) == [loo]


def test_grid_over_split_methods(tiny: Path) -> None:
    configs = grid(tiny, {"split.method": ["time", "leave-one-out"]})
    assert [c.split.method for c in configs] == ["time", "leave-one-out"]
    assert configs[0].split.test_days == 6  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "override",
    [
        "model.layerz=[3]",
        "train.epochs",
        "=3",
        "model..layers=3",
        "train.epochs=-1",
        "model.name=nope",
        "model.layers.x=1",
    ],
)
def test_bad_overrides_are_config_errors(tiny: Path, override: str) -> None:
    with pytest.raises(ConfigError):
        load_experiment(tiny, [override])


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_experiment(bad)
    other = tmp_path / "x.json"
    other.write_text("{}")
    with pytest.raises(ConfigError, match="toml"):
        load_experiment(other)


def test_data_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError):
        DataConfig()
    with pytest.raises(ValueError):
        DataConfig(dataset="ml-100k", path="x.csv")
    with pytest.raises(ValueError, match="registered"):
        DataConfig(dataset="no-such-dataset")


def test_resolved_toml_round_trips(tiny: Path, tmp_path: Path) -> None:
    cfg = load_experiment(tiny, ["model.dropout_hidden=0.1", "preprocess.min_rating=3.5"])
    text = cfg.to_toml()
    assert "null" not in text and "None" not in text
    p = tmp_path / "resolved.toml"
    p.write_text(text)
    assert load_experiment(p) == cfg


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path: Path) -> None:
    cfg = load_experiment(path)
    assert path.read_text().startswith("#"), (
        "each config starts with a comment saying what it reproduces"
    )
    assert cfg.name == path.stem  # so `seqrec run configs/X.toml` writes runs/X
    if cfg.search is not None and cfg.search.method == "optuna":  # chooses points as it runs
        from seqrec.experiment.optuna_search import dimensions

        assert dimensions(cfg.grid)
        return
    configs = grid(cfg)
    assert len(configs) >= 1 and all(not c.grid for c in configs)


def test_shipped_configs_cover_the_seed_experiments() -> None:
    names = {p.stem for p in CONFIGS.glob("*.toml")}
    assert {
        "ml1m_notebook",
        "ml1m_notebook_grid",
        "ml1m_gru4rec",
        "ml100k_notebook",
        "ml100k_notebook_grid",
        "ml100k_gru4rec",
        "ml100k_loo_gru4rec",
        "ml100k_loo_pop",
        "yoochoose100k_gru4rec",
        "synthetic_gru4rec",
    } <= names
    nb = load_experiment(CONFIGS / "ml1m_notebook.toml")
    assert nb.model.input_mode == "onehot" and nb.model.layers == [50]
    assert nb.objective.negatives == "full" and nb.train.optimizer == "adam"
    yc = load_experiment(CONFIGS / "yoochoose100k_gru4rec.toml")
    assert (yc.model.layers, yc.train.batch_size, yc.model.dropout_hidden) == ([100], 32, 0.4)
    assert (yc.train.learning_rate, yc.train.momentum, yc.objective.logq) == (0.2, 0.2, 1.0)


def test_demo_matches_synthetic_config() -> None:
    from seqrec.cli import demo_configs

    demo = demo_configs()[0].to_dict()
    shipped = load_experiment(CONFIGS / "synthetic_gru4rec.toml").to_dict()
    demo.pop("name"), shipped.pop("name")
    assert demo == shipped


def test_objective_belongs_to_the_models_that_take_one(tmp_path: Path, tiny: Path) -> None:
    from seqrec.experiment import model_takes_objective
    from seqrec.models import MODELS

    gru = load_experiment(tiny)
    assert gru.objective is not None and gru.objective.n_sample == 0
    p = tmp_path / "e.toml"
    p.write_text('[data]\ndataset = "synthetic"\n')
    assert load_experiment(p).objective is not None  # GRU4Rec: the defaults
    plain = [name for name in MODELS if not model_takes_objective(name)]
    if not plain:
        pytest.skip("every registered model takes an [objective]")
    name = plain[0]
    p.write_text(f'[data]\ndataset = "synthetic"\n[model]\nname = "{name}"\n[objective]\n')
    with pytest.raises(ConfigError, match="takes no \\[objective\\]"):
        load_experiment(p)
    switched = load_experiment(tiny, [f"model.name={name}"])  # drops the file's [objective]
    assert switched.objective is None and "objective" not in switched.to_dict()


# ---------------------------------------------------------------------------- grid
def test_grid_expansion_count(tmp_path: Path) -> None:
    p = tmp_path / "g.toml"
    p.write_text(
        TINY + '\n[grid]\n"model.layers" = [[4], [8]]\ntrain.learning_rate = [0.01, 0.1]\n'
    )
    cfg = load_experiment(p)
    assert set(cfg.grid) == {"model.layers", "train.learning_rate"}
    configs = grid(p)
    assert len(configs) == 4
    assert [c.model.layers for c in configs] == [[4], [4], [8], [8]]
    assert [c.train.learning_rate for c in configs] == [0.01, 0.1, 0.01, 0.1]
    assert len(grid(cfg, {"model.dropout_hidden": [0.1, 0.3]})) == 8
    assert len(grid(cfg, {"model.layers": [[16]]})) == 2  # an explicit key replaces the file's


def test_grid_errors(tiny: Path) -> None:
    cfg = load_experiment(tiny)
    with pytest.raises(ConfigError):
        grid(cfg, {"model.layerz": [[1], [2]]})
    with pytest.raises(ConfigError):
        grid(cfg, {"model.layers": []})
    with pytest.raises(ConfigError):
        grid(cfg, {"train.epochs": 3})  # type: ignore[dict-item]


def test_grid_without_grid_is_the_config(tiny: Path) -> None:
    assert grid(tiny) == [load_experiment(tiny)]


# ------------------------------------------------------------------------ data prep
def test_prepare_data_stats(tiny: Path) -> None:
    split, stats = prepare_data(load_experiment(tiny))
    assert split.valid is not None and split.test.height > 0
    assert stats["read"]["events"] >= stats["preprocess"]["output"]["events"] > 0
    assert set(stats["split"]) == {"train", "valid", "test"}
    assert set(stats["timings"]) == {"read", "preprocess", "split"}


def test_prepare_data_leave_one_out(tiny: Path) -> None:
    cfg = load_experiment(tiny, ["split.method='leave-one-out'"])
    split, stats = prepare_data(cfg)
    assert stats["split"]["test"]["targets"] == stats["split"]["test"]["sessions"]


def test_prepare_data_preprocess_options(tiny: Path) -> None:
    cfg = load_experiment(
        tiny, ["preprocess.drop_consecutive_repeats=true", "preprocess.session_gap_seconds=600"]
    )
    _, stats = prepare_data(cfg)
    assert "after_sessionize" in stats["preprocess"]
    assert "after_drop_consecutive_repeats" in stats["preprocess"]
    assert [s["step"] for s in stats["preprocess"]["steps"]] == [
        "sessionize",
        "drop_consecutive_repeats",
        "min_session_length",
    ]


def test_preprocess_builds_on_the_preprocess_steps() -> None:
    from seqrec.experiment import PreprocessConfig, preprocess_steps
    from seqrec.preprocess import STEPS, build_steps

    cfg = PreprocessConfig(
        min_rating=4.0,
        session_gap_seconds=1800,
        drop_consecutive_repeats=True,
        min_session_length=3,
        min_item_support=1,
    )
    once, filters = preprocess_steps(cfg, ["user_id", "session_id", "item_id", "timestamp"])
    assert [s["step"] for s in once] == ["min_rating", "sessionize", "drop_consecutive_repeats"]
    assert once[1]["by"] == "user_id"
    assert filters == [{"step": "min_session_length", "n": 3}]  # support 1: no filter
    assert all(s["step"] in STEPS for s in once + filters)
    assert [s.to_dict() for s in build_steps(once)][0] == {"step": "min_rating", "threshold": 4.0}
    once, _ = preprocess_steps(cfg, ["session_id", "item_id", "timestamp"])
    assert once[1]["by"] == "session_id"  # no users: split the existing sessions


NOTEBOOK_CONFIGS = [
    "ml100k_notebook",
    "ml100k_notebook_grid",
    "ml100k_gru4rec",
    "ml1m_notebook",
    "ml1m_notebook_grid",
    "ml1m_gru4rec",
]


def test_notebook_configs_share_the_notebook_split() -> None:
    splits = {name: load_experiment(CONFIGS / f"{name}.toml").split for name in NOTEBOOK_CONFIGS}
    first = splits["ml100k_notebook"]
    assert first.method == "time" and (first.by, first.at_cutoff) == ("event", "later")
    assert all(s == first for s in splits.values())


def test_ml100k_notebook_protocol(data_dir: Path) -> None:
    """The reference notebook's counts on ML-100K, from the shipped experiment file."""
    if not (data_dir / "ml-100k" / "u.data").is_file():
        pytest.skip(f"real-data test: {data_dir / 'ml-100k' / 'u.data'} not found")
    cfg = load_experiment(
        CONFIGS / "ml100k_notebook.toml", [f"data.data_dir={json.dumps(str(data_dir))}"]
    )
    split, stats = prepare_data(cfg)
    assert stats["read"]["events"] == 100_000
    assert stats["preprocess"]["converged"]
    assert split.valid is not None
    assert split.train.get_column("timestamp").max() < split.protocol["valid_cutoff"]
    counts = {part: (c["events"], c["sessions"]) for part, c in stats["split"].items()}
    assert counts == {"train": (82_859, 784), "valid": (12_650, 184), "test": (3_683, 75)}
    assert stats["split"]["train"]["items"] == 1_342


# ----------------------------------------------------------------------------- run
def test_run_writes_a_complete_run_directory(tiny_run) -> None:
    out = tiny_run.out_dir
    assert sorted(p.name for p in out.iterdir()) == [
        "artifact",
        "config.resolved.toml",
        "log.txt",
        "metrics.json",
        "queries",
    ]
    assert sorted(p.name for p in (out / "queries").iterdir()) == ["test.parquet", "valid.parquet"]
    # no temp dirs left next to it
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]

    metrics = json.loads((out / "metrics.json").read_text())
    for part in ("valid", "test"):
        assert set(metrics[part]["metrics"]) == {"recall@20", "mrr@20", "ndcg@20"}
        assert metrics[part]["protocol"]["ties"] == "conservative"
        assert metrics[part]["protocol"]["split"] == part
        assert metrics[part]["protocol"]["data_split"]["method"] == "split_by_time"
    assert len(metrics["history"]) == 1 and metrics["history"][0]["loss"] > 0
    assert metrics["history"][0]["events_per_second"] > 0
    assert metrics["data"]["split"]["train"]["events"] > 0
    assert {"read", "preprocess", "split", "fit", "save", "total"} <= set(metrics["timings"])

    log = (out / "log.txt").read_text()
    assert "experiment 'tiny'" in log and "epoch 1" in log and "finished" in log

    assert load_experiment(out / "config.resolved.toml") == tiny_run.config
    assert tiny_run.reports["test"].metrics == metrics["test"]["metrics"]


def test_run_artifact_loads_and_recommends(tiny_run) -> None:
    rec = Recommender.load(tiny_run.out_dir / "artifact")
    items = rec.vocab_.ids[:3].tolist()
    top = rec.recommend(items, k=5)
    assert top.height == 5 and top["rank"].to_list() == [1, 2, 3, 4, 5]
    fitted = tiny_run.recommender
    assert fitted is not None
    assert (
        rec.recommend(items, k=5)["item_id"].to_list()
        == fitted.recommend(items, k=5)["item_id"].to_list()
    )


def test_run_refuses_existing_directory_then_resume_and_overwrite(tiny_run, tmp_path: Path) -> None:
    cfg = tiny_run.config
    with pytest.raises(RunExistsError, match="--overwrite"):
        run_one(cfg, tiny_run.out_dir, progress=False)
    resumed = run_one(cfg, tiny_run.out_dir, progress=False, resume=True)
    assert resumed.metrics == tiny_run.metrics
    other = cfg.model_copy(update={"seed": 5})
    with pytest.raises(RunExistsError, match="different config"):
        run_one(other, tiny_run.out_dir, progress=False, resume=True)
    assert isinstance(load_run(tiny_run.out_dir).reports["test"].metrics["recall@20"], float)


def test_failed_run_leaves_nothing(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self, *args, **kwargs):
        raise SeqrecError("training blew up")

    monkeypatch.setattr(Recommender, "fit", boom)
    runs = tmp_path / "runs"
    with pytest.raises(SeqrecError, match="blew up"):
        run_one(load_experiment(tiny), runs / "tiny", progress=False)
    assert not (runs / "tiny").exists()
    assert list(runs.iterdir()) == []  # no half-written temp directory either


def test_failed_overwrite_keeps_the_old_run(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "runs" / "tiny"
    cfg = load_experiment(tiny)
    run_one(cfg, out, progress=False)
    before = (out / "metrics.json").read_text()

    def boom(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Recommender, "save", boom)
        with pytest.raises(KeyboardInterrupt):
            run_one(cfg, out, progress=False, overwrite=True)
    assert (out / "metrics.json").read_text() == before
    assert Recommender.load(out / "artifact").vocab_ is not None
    # the interrupted run had trained: its checkpoint is kept (tidied) to be resumed
    assert sorted(p.name for p in out.parent.iterdir()) == [".tiny.partial", "tiny"]
    partial = out.parent / ".tiny.partial"
    assert sorted(p.name for p in partial.iterdir()) == [
        "checkpoint",
        "config.resolved.toml",
        "log.txt",
    ]
    # resume: the finished run has the same config, so it is kept and the leftover goes
    res = run_one(cfg, out, progress=False, resume=True)
    assert res.status == "finished" and (out / "metrics.json").read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]


def test_run_rejects_a_config_with_a_grid(tiny: Path) -> None:
    cfg = load_experiment(tiny)
    with_grid = ExperimentConfig.model_validate(
        {**cfg.model_dump(), "grid": {"train.epochs": [1, 2]}}
    )
    with pytest.raises(ConfigError, match="grid"):
        run_one(with_grid, "unused", progress=False)


def test_run_grid_writes_summary(tiny: Path, tmp_path: Path) -> None:
    configs = grid(tiny, {"model.layers": [[4], [8]]})
    results = run_grid(configs, tmp_path / "g", progress=False)
    names = [f"tiny-{point_id(c)}-s0" for c in configs]
    assert [r.out_dir.name for r in results] == names
    import csv

    rows = list(csv.DictReader((tmp_path / "g" / "summary.csv").open()))
    assert [r["run"] for r in rows] == names
    assert [r["status"] for r in rows] == ["new", "new"]
    assert [r["model.layers"] for r in rows] == ["[4]", "[8]"]
    assert float(rows[0]["test.recall@20"]) == results[0].reports["test"].metrics["recall@20"]
    for r in results:
        assert (r.out_dir / "artifact" / "model.safetensors").is_file()
