"""Contract every next-item model passes (registry-driven)."""

import numpy as np
import polars as pl
import pytest
import torch

from seqrec.data.synthetic import synthetic_optimal_recall, synthetic_sessions
from seqrec.evaluate import brute_force_ranks, iter_scores
from seqrec.exceptions import ArtifactError, NotFittedError, UnknownItemError
from seqrec.losses import ObjectiveConfig
from seqrec.metrics import target_ranks
from seqrec.models import MODELS, GRU4RecConfig, PopularityConfig
from seqrec.recommender import Recommender, RecommenderConfig, _to_sequences
from seqrec.train import TrainConfig

N_ITEMS = 100
FAST = TrainConfig(epochs=4, batch_size=32, learning_rate=0.1, progress=False, device="cpu")

CONFIGS = {
    "gru4rec": (GRU4RecConfig(layers=[48]), ObjectiveConfig(n_sample=64)),
    "pop": (PopularityConfig(), ObjectiveConfig()),
}
# sanity bands for recall@20 on the planted task (oracle ~0.92, chance 0.2)
BANDS = {"gru4rec": (0.8, 1.0), "pop": (0.1, 0.35)}


@pytest.fixture(scope="module")
def synth():
    df = synthetic_sessions(n_sessions=1500, n_items=N_ITEMS, seed=3)
    test_ids = df.get_column("session_id").unique().sort()[-250:].implode()
    return df.filter(~pl.col("session_id").is_in(test_ids)), df.filter(
        pl.col("session_id").is_in(test_ids)
    )


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, synth):
    model, obj = CONFIGS[request.param]
    return request.param, Recommender(model, obj, FAST, seed=0).fit(synth[0])


def test_registry_is_covered():
    assert set(CONFIGS) == set(MODELS)


def test_learns_planted_task(fitted, synth):
    name, rec = fitted
    r = rec.evaluate(synth[1]).metrics["recall@20"]
    lo, hi = BANDS[name]
    assert lo <= r <= hi, f"{name} recall@20={r:.3f} outside {BANDS[name]}"
    assert r <= synthetic_optimal_recall(N_ITEMS, 0.9, 20) + 0.03  # nobody beats the oracle


def test_batch_equals_single_query(fitted, synth):
    _, rec = fitted
    sessions = [
        s.to_list()
        for s in synth[1].group_by("session_id", maintain_order=True).agg("item_id")["item_id"][:12]
    ]
    sessions = [s[: 1 + i % len(s)] for i, s in enumerate(sessions)]  # different lengths
    batch = rec.recommend_many(sessions, k=10)
    for s, (ids, scores) in zip(sessions, batch, strict=True):
        one_ids, one_scores = rec.recommend_many([s], k=10)[0]
        assert np.array_equal(ids, one_ids)
        np.testing.assert_allclose(scores, one_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_session_parallel_eval_equals_brute_force(fitted, synth, exclude_seen):
    _, rec = fitted
    data, _ = _to_sequences(synth[1], rec.vocab_)
    data = data.select(np.arange(25))
    bf = np.sort(brute_force_ranks(rec.module_, data, exclude_seen=exclude_seen))
    fast = np.sort(
        np.concatenate(
            [
                target_ranks(s, t, mask=m).numpy()
                for s, t, m in iter_scores(
                    rec.module_, data, batch_size=7, exclude_seen=exclude_seen
                )
            ]
        )
    )
    assert len(bf) == data.target_mask().sum()
    np.testing.assert_allclose(bf, fast)


def test_save_load_gives_identical_recommendations(fitted, synth, tmp_path):
    _, rec = fitted
    rec.save(tmp_path / "m")
    rec2 = Recommender.load(tmp_path / "m")
    q = synth[1]["item_id"][:5].to_list()
    a, b = rec.recommend(q, k=20), rec2.recommend(q, k=20)
    assert a.equals(b)
    assert rec2.config == rec.config


def test_unknown_and_empty_input(fitted):
    _, rec = fitted
    empty = rec.recommend([], k=5)
    assert empty.height == 5 and empty["rank"].to_list() == [1, 2, 3, 4, 5]
    assert (
        rec.recommend([-12345], k=5)["item_id"].to_list() == empty["item_id"].to_list()
    )  # unknown dropped
    with pytest.raises(UnknownItemError, match="-12345"):
        rec.recommend([-12345], k=5, unknown="error")


def test_exclude_seen_and_candidates(fitted, synth):
    _, rec = fitted
    q = synth[1]["item_id"][:4].to_list()
    out = rec.recommend(q, k=N_ITEMS, exclude_seen=True)["item_id"].to_list()
    assert not set(out) & set(q)
    cand = synth[0]["item_id"].unique().to_list()[:7]
    got = rec.recommend(q, k=20, candidates=cand)["item_id"].to_list()
    assert set(got) <= set(cand) and len(got) == 7


def test_config_json_roundtrip(fitted):
    _, rec = fitted
    cfg = rec.config
    assert RecommenderConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_unfitted_and_broken_artifacts(tmp_path):
    with pytest.raises(NotFittedError):
        Recommender(PopularityConfig()).recommend([1])
    with pytest.raises(ArtifactError, match="no saved model"):
        Recommender.load(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ArtifactError, match="missing"):
        Recommender.load(tmp_path / "half")


def test_gru4rec_training_changes_params_and_eval_does_not(synth):
    rec = Recommender(
        GRU4RecConfig(layers=[16]),
        ObjectiveConfig(n_sample=16),
        TrainConfig(epochs=0, progress=False, device="cpu"),
        seed=1,
    ).fit(synth[0])
    before = {k: v.clone() for k, v in rec.module_.state_dict().items()}
    rec.evaluate(synth[1])
    assert all(torch.equal(before[k], v) for k, v in rec.module_.state_dict().items())
    rec1 = Recommender(
        GRU4RecConfig(layers=[16]),
        ObjectiveConfig(n_sample=16),
        TrainConfig(epochs=1, progress=False, device="cpu"),
        seed=1,
    ).fit(synth[0])
    changed = [k for k, v in rec1.module_.state_dict().items() if not torch.equal(before[k], v)]
    assert set(changed) == set(before)  # every parameter learns


def test_seed_makes_training_reproducible(synth):
    cfg = (
        GRU4RecConfig(layers=[16], dropout_hidden=0.2),
        ObjectiveConfig(n_sample=16),
        TrainConfig(epochs=1, progress=False, device="cpu"),
    )
    a = Recommender(*cfg, seed=5).fit(synth[0]).module_.state_dict()
    b = Recommender(*cfg, seed=5).fit(synth[0]).module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "model,obj",
    [
        (
            GRU4RecConfig(layers=[32], constrained_embedding=False, embedding_dim=0),
            ObjectiveConfig(negatives="full"),
        ),
        (
            GRU4RecConfig(layers=[32], constrained_embedding=False, embedding_dim=24),
            ObjectiveConfig(loss="bpr-max", n_sample=32),
        ),
        (
            GRU4RecConfig(layers=[32, 32], dropout_embed=0.1, dropout_hidden=0.1),
            ObjectiveConfig(n_sample=32, logq=1.0),
        ),
    ],
    ids=["onehot-fullsoftmax", "embedding-bprmax", "2layers-logq"],
)
def test_gru4rec_variants_learn(model, obj, synth):
    train = TrainConfig(
        epochs=3,
        batch_size=32,
        optimizer="adam" if obj.negatives == "full" else "adagrad",
        learning_rate=0.01 if obj.negatives == "full" else 0.1,
        progress=False,
        device="cpu",
    )
    rec = Recommender(model, obj, train, seed=0).fit(synth[0])
    assert rec.evaluate(synth[1]).metrics["recall@20"] > 0.5


def test_unknown_targets_count_as_misses_or_are_dropped(fitted, synth):
    _, rec = fitted
    test = synth[1].head(40).with_columns(is_target=pl.lit(True))
    test = test.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(-777)
        .otherwise(pl.col("item_id"))
        .alias("item_id")
    )
    miss = rec.evaluate(test)
    drop = rec.evaluate(test, unknown_targets="drop")
    assert miss.protocol["n_unknown_targets"] == 1
    assert miss.n_queries == drop.n_queries + 1
    assert miss.metrics["recall@20"] == pytest.approx(
        drop.metrics["recall@20"] * drop.n_queries / miss.n_queries
    )
