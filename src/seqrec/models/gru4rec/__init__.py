"""GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018), as the official code.

* :mod:`.model` — the network (input modes, GRU layers, output item vectors and biases);
* :mod:`.objective` — its loss/negatives config and the merged sampled columns;
* :mod:`.training` — session-parallel training (fast and autograd loops) as a strategy;
* replay (session-parallel evaluation) is :meth:`GRU4Rec.replay`.
"""

from __future__ import annotations

from seqrec.models.base import ModelSpec
from seqrec.models.gru4rec.model import GRU4Rec, GRU4RecConfig
from seqrec.models.gru4rec.objective import ObjectiveConfig
from seqrec.models.gru4rec.training import TRAIN_DEFAULTS, GRU4RecStrategy

SPEC = ModelSpec(
    name="gru4rec",
    config=GRU4RecConfig,
    task="next-item",
    build=GRU4Rec,
    strategy=GRU4RecStrategy,
    objective=ObjectiveConfig,
    train_defaults=TRAIN_DEFAULTS,
    example={
        "model": {"layers": [48]},
        "objective": {"n_sample": 64},
        "train": {"epochs": 4, "batch_size": 32, "learning_rate": 0.1},
    },
    planted_recall=(0.8, 1.0),
    summary="GRU4Rec: session-parallel GRU, sampled softmax / BPR-max (official code's maths)",
)

__all__ = ["SPEC", "GRU4Rec", "GRU4RecConfig", "GRU4RecStrategy", "ObjectiveConfig"]
