"""GRU4Rec on real data: a fast check in the default run, the published-parity check as `slow`."""

from pathlib import Path

import pytest

from seqrec.datasets import load_dataset
from seqrec.models import GRU4RecConfig, PopularityConfig
from seqrec.models.gru4rec import ObjectiveConfig
from seqrec.recommender import Recommender
from seqrec.split import leave_last_out, presplit
from seqrec.train import TrainConfig

# the authors' RSC15 parameters (official paramfiles/rsc15_xe_shared_100_best.py)
YOO = (
    GRU4RecConfig(layers=[100], dropout_hidden=0.4),
    ObjectiveConfig(n_sample=2048, sample_alpha=0.5, logq=1.0),
)


@pytest.fixture(scope="module")
def yoochoose(data_dir: Path):
    if not (data_dir / "yoochoose-100k").is_dir():
        pytest.skip("real-data test: yoochoose-100k not in SEQREC_DATA")
    return presplit(load_dataset("yoochoose-100k", data_dir=data_dir))


def _train(epochs: int) -> TrainConfig:
    return TrainConfig(
        epochs=epochs, batch_size=32, learning_rate=0.2, momentum=0.2, progress=False, device="cpu"
    )


def test_gru4rec_one_epoch_on_yoochoose_beats_popularity(yoochoose):
    rec = Recommender(*YOO, _train(1), seed=0).fit(yoochoose.train)
    gru = rec.evaluate(yoochoose.test).metrics
    pop = Recommender(PopularityConfig()).fit(yoochoose.train).evaluate(yoochoose.test).metrics
    assert gru["recall@20"] > 0.55 > 5 * pop["recall@20"]
    assert gru["mrr@20"] > 0.25


def test_gru4rec_on_ml100k_leave_one_out_beats_popularity(ml100k):
    sp = leave_last_out(ml100k, n=1, valid=False)
    train = TrainConfig(epochs=2, batch_size=128, learning_rate=0.1, progress=False, device="cpu")
    gru = Recommender(GRU4RecConfig(layers=[100], dropout_hidden=0.2), YOO[1], train, seed=0).fit(
        sp.train
    )
    pop = Recommender(PopularityConfig()).fit(sp.train)
    g, p = gru.evaluate(sp.test).metrics, pop.evaluate(sp.test).metrics
    assert g["recall@20"] > p["recall@20"] + 0.05
    assert gru.evaluate(sp.test).n_queries == 943


@pytest.mark.slow
def test_gru4rec_matches_official_accuracy_on_yoochoose(yoochoose):
    """Official code, same parameters, 10 epochs: Recall@20 ~0.68, MRR@20 ~0.36 (within 2%)."""
    m = Recommender(*YOO, _train(10), seed=0).fit(yoochoose.train).evaluate(yoochoose.test).metrics
    assert m["recall@20"] == pytest.approx(0.68, rel=0.02)
    assert m["mrr@20"] == pytest.approx(0.36, rel=0.02)
