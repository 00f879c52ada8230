"""Fuzz: the Python API — configs, queries, Recommender fit/recommend/evaluate/save/load,
preprocessing, splits, experiment files and damaged model directories.

Every case ends in a SeqrecError or a result checked against an independent computation
(brute-force top-k over the raw scores, a Python fixed-point filter, per-sequence counts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _fuzz import FUZZ, assert_cli_error, save_pop_model
from seqrec.exceptions import ArtifactError, ConfigError, SeqrecError
from seqrec.experiment import load_experiment
from seqrec.models import MODELS
from seqrec.preprocess import clean
from seqrec.recommender import Recommender
from seqrec.split import leave_last_out
from seqrec.train import TrainConfig


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pop_model(tmp_path_factory.mktemp("apimodel") / "model")


@pytest.fixture(scope="module")
def rec(model_dir: Path) -> Recommender:
    return Recommender.load(model_dir)


# ------------------------------------------------------------------------------ configs
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(-2, 200), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@FUZZ
@given(
    name=st.sampled_from(sorted(MODELS)),
    data=st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=3),
    known=st.data(),
)
def test_model_configs_in_python(name: str, data: dict[str, Any], known: st.DataObject) -> None:
    """A registered model's config built from random keyword arguments: ConfigError or a
    config that round-trips through JSON."""
    cls = MODELS[name].config
    fields = [f for f in cls.model_fields if f != "name"]
    if fields:
        key = known.draw(st.sampled_from(fields))
        data = {**data, key: known.draw(_values)}
    data.pop("name", None)
    try:
        cfg = cls(**data)
    except ConfigError as e:
        assert "invalid" in str(e) and len(str(e)) < 3000
        return
    assert cls.model_validate_json(cfg.model_dump_json()) == cfg


@FUZZ
@given(data=st.dictionaries(st.sampled_from(sorted(TrainConfig.model_fields)), _values, max_size=4))
def test_train_config_in_python(data: dict[str, Any]) -> None:
    try:
        cfg = TrainConfig(**data)
    except ConfigError:
        return
    assert TrainConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_pydantic_errors_never_escape_python_configs() -> None:
    for name, spec in MODELS.items():
        with pytest.raises(ConfigError, match="unknown key"):
            spec.config(not_a_key=1)
        assert issubclass(ConfigError, SeqrecError), name


# ------------------------------------------------------------------------------ queries
_item = st.one_of(
    st.integers(990, 1040),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_session = st.one_of(
    st.lists(_item, max_size=6),
    st.text(max_size=6),
    st.sets(st.integers(995, 1035), max_size=3),
    st.integers(),
    st.none(),
    st.dictionaries(st.integers(), st.integers(), max_size=2),
)
_k = st.one_of(st.integers(-2, 40), st.floats(allow_nan=True), st.text(max_size=2), st.none())


def _brute_force(rec: Recommender, items: list[int], k: int, exclude_seen: bool) -> list[Any]:
    """Top-k by numpy over the raw model scores (the independent computation)."""
    import torch

    known = [i for i in items if i in set(rec.vocab_.ids.tolist())]
    batch = rec.query_batch([__import__("seqrec.data.query", fromlist=["Query"]).Query(known)])
    with torch.no_grad():
        raw = rec.model_.score(batch).float().numpy()[0].copy()
    raw[0] = -np.inf
    if exclude_seen:
        raw[rec.vocab_.encode(np.asarray(known, dtype=np.int64), unknown="drop")] = -np.inf
    order = np.argsort(-raw, kind="stable")[: min(k, len(rec.vocab_))]
    order = order[np.isfinite(raw[order])]
    return [rec.vocab_.decode(np.asarray([j]))[0] for j in order]


@FUZZ
@given(session=_session, k=_k, exclude_seen=st.one_of(st.booleans(), st.sampled_from([0, "no"])))
def test_recommend_arguments(rec: Recommender, session: Any, k: Any, exclude_seen: Any) -> None:
    try:
        got = rec.recommend(session, k=k, exclude_seen=exclude_seen)
    except SeqrecError as e:
        assert len(str(e)) < 500
        return
    # accepted: only integer ids, an integer k >= 1, a real bool
    assert isinstance(session, list) and all(type(i) is int for i in session)
    assert type(k) is int and k >= 1 and isinstance(exclude_seen, bool)
    want = _brute_force(rec, session, k, exclude_seen)
    ids = got.get_column("item_id").to_list()
    scores = got.get_column("score").to_numpy()
    assert len(ids) == len(want)
    # equal scores may come in another order: compare the score sequence and the id sets
    assert np.all(np.diff(scores) <= 1e-6)
    want_scores = rec.recommend_many([session], k, exclude_seen=exclude_seen)[0][1]
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)
    strict_top = scores > scores[-1] + 1e-9  # above the cut-off score: no tie ambiguity
    assert set(np.asarray(ids)[strict_top]) <= set(want)


def test_recommend_known_bad_calls(rec: Recommender) -> None:
    for bad, kw in [("50", {}), ([50.7], {}), ([1000], {"k": 2.5}), ([1000], {"k": 0})]:
        with pytest.raises(SeqrecError):
            rec.recommend(bad, **kw)
    with pytest.raises(SeqrecError):
        rec.recommend_many("abc")
    with pytest.raises(SeqrecError):
        rec.recommend_queries([[1000]])  # type: ignore[list-item]


# ------------------------------------------------------------------- fit / evaluate
_frames = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 6), st.integers(0, 30)), min_size=0, max_size=30
)


def _frame(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows or None,
        schema={"session_id": pl.Int64, "item_id": pl.Int64, "timestamp": pl.Float64},
        orient="row",
    )


@FUZZ
@given(rows=_frames, name=st.sampled_from(["pop", "markov", "sknn"]))
def test_fit_evaluate_random_frames(rows, name: str) -> None:
    df = _frame(rows)
    spec = MODELS.get(name) or MODELS["pop"]
    try:
        rec = Recommender(spec.config()).fit(df)
        report = rec.evaluate(df, metrics=["recall@5"])
    except SeqrecError:
        return
    n_targets = int((df.group_by("session_id").len().get_column("len") - 1).sum())
    assert report.n_queries == n_targets
    value = report.metrics["recall@5"]
    assert (np.isnan(value) and n_targets == 0) or 0.0 <= value <= 1.0  # no query: undefined


def test_fit_rejects_non_frames() -> None:
    for bad in (None, [1, 2], "file.csv", pl.DataFrame()):
        with pytest.raises(SeqrecError):
            Recommender(MODELS["pop"].config()).fit(bad)  # type: ignore[arg-type]


@FUZZ
@given(rows=_frames, min_len=st.integers(1, 4), min_sup=st.integers(1, 4))
def test_clean_fixed_point(rows, min_len: int, min_sup: int) -> None:
    """clean() equals a plain-Python fixed point of the two filters."""
    df = _frame(rows)
    try:
        got = clean(df, min_session_length=min_len, min_item_support=min_sup)
    except SeqrecError:
        got = None
    keep = list(range(len(rows)))
    while True:
        sess = {}
        items = {}
        for j in keep:
            sess[rows[j][0]] = sess.get(rows[j][0], 0) + 1
            items[rows[j][1]] = items.get(rows[j][1], 0) + 1
        new = [j for j in keep if sess[rows[j][0]] >= min_len and items[rows[j][1]] >= min_sup]
        if new == keep:
            break
        keep = new
    if got is None:
        assert not keep or not rows
        return
    assert sorted(got.select("session_id", "item_id").iter_rows()) == sorted(
        (rows[j][0], rows[j][1]) for j in keep
    )


@FUZZ
@given(rows=_frames, n=st.integers(1, 2), valid=st.booleans())
def test_leave_last_out_counts(rows, n: int, valid: bool) -> None:
    df = _frame(rows)
    try:
        split = leave_last_out(df, n=n, valid=valid)
    except SeqrecError:
        return
    total = split.train.height
    for part in (split.valid, split.test):
        if part is not None:
            assert "session_id" in part.columns
    assert total <= df.height


# ---------------------------------------------------------------------- experiment files
BROKEN_EXPERIMENTS = [
    "",
    "[data]\n",
    "[data]\ndataset = 'nope'\n",
    "[data]\ndataset = 'synthetic'\npath = 'x.csv'\n",
    "[data]\npath = '/no/such/file.csv'\n",
    "[data]\ndataset = 'synthetic'\n[model]\nname = 'no-such-model'\n",
    "[data]\ndataset = 'synthetic'\n[model]\nlayers = 'x'\n",
    "[data]\ndataset = 'synthetic'\n[train]\nepochs = -1\n",
    "[data]\ndataset = 'synthetic'\n[train]\nepochs = 2.5\n",
    "[data]\ndataset = 'synthetic'\n[trian]\nepochs = 1\n",
    "[data]\ndataset = 'synthetic'\n[split]\nmethod = 'random'\n",
    "[data]\ndataset = 'synthetic'\n[split]\ntest_days = -3\n",
    "[data]\ndataset = 'synthetic'\n[eval]\nmetrics = ['recal@20']\n",
    "[data]\ndataset = 'synthetic'\n[eval]\nmetrics = []\n",
    "[data]\ndataset = 'synthetic'\n[eval]\ncandidates = 0\n",
    "[data]\ndataset = 'synthetic'\n[model]\nname = 'pop'\n[objective]\nloss = 'bpr'\n",
    "[data]\ndataset = 'synthetic'\n[preprocess]\nmin_session_length = 0\n",
    "[data]\ndataset = 'synthetic'\ntime_unit = 'ms'\n",
    "[data]\npath = 'x.csv'\ntime_unit = 'years'\n",
    "[data]\npath = 'x.csv'\nformat = 'excel'\n",
    "name = '../escape'\n[data]\ndataset = 'synthetic'\n",
    "[data\ndataset = 'synthetic'\n",
    "data = 3\n",
    "[grid]\n'model.layers' = 5\n[data]\ndataset = 'synthetic'\n",
    "[data]\ndataset = 'synthetic'\n[data.synthetic]\nn_items = 1\n",
]


@pytest.mark.parametrize("text", BROKEN_EXPERIMENTS)
def test_broken_experiment_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    try:
        cfg = load_experiment(p)
    except ConfigError as e:
        assert len(str(e)) < 3000
        # the CLI says the same, exit 2
        assert_cli_error(["run", str(p), "--out", str(tmp_path / "run")])
        return
    # the few that load fail when run (a missing file, an empty grid dimension)
    from seqrec.experiment import grid, prepare_data

    with pytest.raises(SeqrecError):
        prepare_data(grid(cfg)[0])


@FUZZ
@given(blob=st.binary(min_size=1, max_size=300), suffix=st.sampled_from([".toml", ".yaml"]))
def test_garbage_experiment_files(tmp_path_factory: pytest.TempPathFactory, blob, suffix) -> None:
    p = tmp_path_factory.mktemp("exp") / f"exp{suffix}"
    p.write_bytes(blob)
    try:
        load_experiment(p)
    except ConfigError:
        return
    raise AssertionError(f"garbage loaded as an experiment: {blob!r}")


# ---------------------------------------------------------------------- damaged artifacts
def _damage(d: Path, how: str, rng: np.random.Generator) -> str:
    """Damage a copy of a model directory; returns the file name the error must name."""
    files = {
        "truncate-weights": "model.safetensors",
        "zero-weights": "model.safetensors",
        "garbage-vocab": "vocab.json",
        "metadata-list": "metadata.json",
        "metadata-garbage": "metadata.json",
        "flip-byte": None,
        "delete": None,
        "dir-instead": "state.json",
        "config-object": "config.json",
    }
    name = files[how] or str(rng.choice(["model.safetensors", "vocab.json", "config.json"]))
    p = d / name
    data = p.read_bytes()
    if how == "truncate-weights":
        p.write_bytes(data[: len(data) // 3])
    elif how == "zero-weights":
        p.write_bytes(b"\0" * len(data))
    elif how == "garbage-vocab":
        p.write_text("{not json")
    elif how == "metadata-list":
        p.write_text("[]")
    elif how == "metadata-garbage":
        p.write_bytes(b"\xff\xfe" + data[:10])
    elif how == "flip-byte":
        j = int(rng.integers(0, len(data)))
        p.write_bytes(data[:j] + bytes([data[j] ^ 0x20]) + data[j + 1 :])
    elif how == "delete":
        p.unlink()
    elif how == "dir-instead":
        p.unlink()
        p.mkdir()
    elif how == "config-object":
        p.write_text(json.dumps([1, 2]))
    return name


DAMAGE = [
    "truncate-weights",
    "zero-weights",
    "garbage-vocab",
    "metadata-list",
    "metadata-garbage",
    "flip-byte",
    "delete",
    "dir-instead",
    "config-object",
]


@FUZZ
@given(how=st.sampled_from(DAMAGE), seed=st.integers(0, 2**16))
def test_damaged_artifacts(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory, how: str, seed: int
) -> None:
    """Every damage class: ArtifactError naming the file, from load, evaluate and recommend."""
    import shutil

    d = tmp_path_factory.mktemp("damaged") / "model"
    shutil.copytree(model_dir, d)
    name = _damage(d, how, np.random.default_rng(seed))
    with pytest.raises(ArtifactError) as e:
        Recommender.load(d)
    assert name in str(e.value) or "missing" in str(e.value), (how, e.value)
    assert_cli_error(["recommend", str(d), "--items", "1000"], name if how != "delete" else "")
    assert_cli_error(["evaluate", str(d), "synthetic", "--split", "all"])


def test_consistent_damage_with_rewritten_checksums(model_dir: Path, tmp_path: Path) -> None:
    """Damage whose checksums were recomputed: still an ArtifactError, no traceback."""
    import hashlib
    import shutil

    for target, content in [
        ("vocab.json", b'{"ids": "nope"}'),
        ("vocab.json", b"[]"),
        ("state.json", b'{"fields": 3}'),
        ("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "),
    ]:
        d = tmp_path / f"m-{target}-{len(content)}"
        shutil.copytree(model_dir, d)
        (d / target).write_bytes(content)
        meta = json.loads((d / "metadata.json").read_text())
        meta["files"][target] = hashlib.sha256(content).hexdigest()
        (d / "metadata.json").write_text(json.dumps(meta))
        with pytest.raises(ArtifactError):
            Recommender.load(d)
