"""seqrec: sequential recommendation (session-based next item, next basket)."""

from seqrec.columns import Columns
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

# The rest is imported on first use (PEP 562), so that `seqrec --help` and the light parts
# (readers, exceptions, configs) do not pay for importing torch.
_LAZY: dict[str, tuple[str, str]] = {
    "SequenceData": ("seqrec.data.sequences", "SequenceData"),
    "Vocabulary": ("seqrec.data.vocab", "Vocabulary"),
    "synthetic_sessions": ("seqrec.data.synthetic", "synthetic_sessions"),
    "load_dataset": ("seqrec.datasets", "load_dataset"),
    "EvalReport": ("seqrec.evaluate", "EvalReport"),
    "evaluate": ("seqrec.evaluate", "evaluate"),
    "ExperimentConfig": ("seqrec.experiment", "ExperimentConfig"),
    "load_experiment": ("seqrec.experiment", "load_experiment"),
    "run": ("seqrec.experiment", "run"),
    "run_grid": ("seqrec.experiment", "run_grid"),
    "MODELS": ("seqrec.models", "MODELS"),
    "GRU4Rec": ("seqrec.models", "GRU4Rec"),
    "GRU4RecConfig": ("seqrec.models", "GRU4RecConfig"),
    "Popularity": ("seqrec.models", "Popularity"),
    "PopularityConfig": ("seqrec.models", "PopularityConfig"),
    "ObjectiveConfig": ("seqrec.models.gru4rec", "ObjectiveConfig"),
    "Preprocessor": ("seqrec.preprocess", "Preprocessor"),
    "clean": ("seqrec.preprocess", "clean"),
    "Recommender": ("seqrec.recommender", "Recommender"),
    "Split": ("seqrec.split", "Split"),
    "leave_last_out": ("seqrec.split", "leave_last_out"),
    "presplit": ("seqrec.split", "presplit"),
    "split_by_ratio": ("seqrec.split", "split_by_ratio"),
    "split_by_time": ("seqrec.split", "split_by_time"),
    "TrainConfig": ("seqrec.train", "TrainConfig"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seqrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "MODELS",
    "ArtifactError",
    "EvalReport",
    "ExperimentConfig",
    "GRU4Rec",
    "GRU4RecConfig",
    "ObjectiveConfig",
    "Popularity",
    "PopularityConfig",
    "Preprocessor",
    "Recommender",
    "Split",
    "TrainConfig",
    "clean",
    "evaluate",
    "leave_last_out",
    "load_dataset",
    "load_experiment",
    "presplit",
    "run",
    "run_grid",
    "split_by_ratio",
    "split_by_time",
    "synthetic_sessions",
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
