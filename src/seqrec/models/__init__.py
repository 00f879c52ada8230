"""Models: one file per model with its config; the explicit registry ``MODELS``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from seqrec.models.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.models.popularity import Popularity, PopularityConfig

ModelConfig = Annotated[GRU4RecConfig | PopularityConfig, Field(discriminator="name")]
"""Any model config; ``name`` selects the model."""

MODELS: dict[str, tuple[type, type]] = {
    "gru4rec": (GRU4RecConfig, GRU4Rec),
    "pop": (PopularityConfig, Popularity),
}
"""name -> (config class, module class). Explicit: no string-glued lookups."""

__all__ = ["MODELS", "GRU4Rec", "GRU4RecConfig", "ModelConfig", "Popularity", "PopularityConfig"]
