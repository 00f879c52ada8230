"""The contract every registered model passes (seqrec.testing, parametrised over MODELS),
plus facade-level checks."""

import polars as pl
import pytest
import torch

from seqrec.exceptions import ArtifactError, ConfigError, NotFittedError
from seqrec.models import MODELS, GRU4RecConfig, PopularityConfig
from seqrec.models.gru4rec import ObjectiveConfig
from seqrec.recommender import Recommender, RecommenderConfig
from seqrec.testing import (
    ContractCase,
    contract_checks,
    fit_example,
    planted_basket_task,
    planted_task,
)
from seqrec.train import TrainConfig


@pytest.fixture(scope="module")
def synth():
    return planted_task()


@pytest.fixture(scope="module")
def synth_baskets():
    return planted_basket_task()


_CASES: dict[str, ContractCase] = {}


@pytest.fixture(scope="module")
def case(synth, synth_baskets):
    def get(name: str) -> ContractCase:
        if name not in _CASES:
            data = synth_baskets if MODELS[name].task == "next-basket" else synth
            _CASES[name] = ContractCase(name, fit_example(name, data[0]), *data)
        return _CASES[name]

    return get


_PAIRS = [(n, c) for n in sorted(MODELS) for c in contract_checks(MODELS[n].task)]


@pytest.mark.parametrize("name,check", _PAIRS, ids=[f"{n}-{c.__name__}" for n, c in _PAIRS])
def test_contract(name, check, case):
    check(case(name))


@pytest.fixture(scope="module")
def fitted(case):
    return "gru4rec", case("gru4rec").rec


def test_config_json_roundtrip(fitted):
    _, rec = fitted
    cfg = rec.config
    assert RecommenderConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_objective_only_for_models_that_take_one():
    with pytest.raises(ConfigError, match="'pop' takes no \\[objective\\]"):
        _ = Recommender(PopularityConfig(), ObjectiveConfig()).config
    rec = Recommender(GRU4RecConfig(), {"n_sample": 7})
    assert rec.config.objective.n_sample == 7


def test_train_option_the_optimizer_lacks_is_an_error():
    with pytest.raises(ValueError, match="weight_decay is not supported by optimizer 'adagrad'"):
        TrainConfig(optimizer="adagrad", weight_decay=0.1)
    with pytest.raises(ValueError, match="momentum is not supported by optimizer 'adam'"):
        TrainConfig(optimizer="adam", momentum=0.5)


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
