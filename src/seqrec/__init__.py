"""seqrec: sequential recommendation (session-based next item, next basket)."""

from seqrec.columns import Columns
from seqrec.data import SequenceData, Vocabulary
from seqrec.exceptions import (
    ArtifactError,
    ConfigError,
    DataError,
    NotFittedError,
    SchemaError,
    SeqrecError,
    UnknownItemError,
)

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "Columns",
    "ConfigError",
    "DataError",
    "NotFittedError",
    "SchemaError",
    "SeqrecError",
    "SequenceData",
    "UnknownItemError",
    "Vocabulary",
    "__version__",
]
