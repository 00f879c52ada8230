"""Models: one file (or folder) per model with its config and its :class:`ModelSpec`.

``MODELS`` is the explicit registry (name -> spec) and ``ModelConfig`` the discriminated
union of the model configs, both derived from the list below: adding a model is its module
plus one line here.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from seqrec.models import gru4rec, knn, markov, popularity, sasrec
from seqrec.models.base import ModelSpec, Scorer, SupportsReplay, TrainingStrategy
from seqrec.models.basket import rnn as basket_rnn
from seqrec.models.basket import tifu_knn, topfreq, upcf
from seqrec.models.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.models.popularity import Popularity, PopularityConfig

_SPECS: list[ModelSpec] = [
    gru4rec.SPEC,
    popularity.SPEC,
    popularity.SPOP_SPEC,
    popularity.RECENT_POP_SPEC,
    markov.MARKOV_SPEC,
    markov.SR_SPEC,
    knn.IKNN_SPEC,
    knn.SKNN_SPEC,
    knn.VSKNN_SPEC,
    sasrec.SPEC,
    basket_rnn.SPEC,
    topfreq.G_SPEC,
    topfreq.P_SPEC,
    topfreq.GP_SPEC,
    upcf.SPEC,
    tifu_knn.SPEC,
]

MODELS: dict[str, ModelSpec] = {s.name: s for s in _SPECS}
"""name -> :class:`ModelSpec`. Explicit: no string-glued lookups."""

DEFAULT_MODEL = "gru4rec"
"""The model of a config (or ``[model]`` table) that names none."""

ModelConfig: Any = Annotated[
    Union[tuple(s.config for s in _SPECS)],  # noqa: UP007 - built from the registry
    Field(discriminator="name"),
]
"""Any model config; ``name`` selects the model."""


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; an unknown name lists the valid ones."""
    from seqrec.exceptions import ConfigError

    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}"
        ) from None


__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "GRU4Rec",
    "GRU4RecConfig",
    "ModelConfig",
    "ModelSpec",
    "Popularity",
    "PopularityConfig",
    "Scorer",
    "SupportsReplay",
    "TrainingStrategy",
    "get_spec",
]
