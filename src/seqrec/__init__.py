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

# imported after __version__: these modules read it when saving
from seqrec.data.synthetic import synthetic_sessions  # noqa: E402
from seqrec.datasets import load_dataset  # noqa: E402
from seqrec.evaluate import EvalReport, evaluate  # noqa: E402
from seqrec.experiment import ExperimentConfig, load_experiment, run, run_grid  # noqa: E402
from seqrec.models import MODELS, GRU4Rec, GRU4RecConfig, Popularity, PopularityConfig  # noqa: E402
from seqrec.models.gru4rec import ObjectiveConfig  # noqa: E402
from seqrec.preprocess import Preprocessor, clean  # noqa: E402
from seqrec.recommender import Recommender  # noqa: E402
from seqrec.split import Split, leave_last_out, presplit, split_by_ratio, split_by_time  # noqa: E402
from seqrec.train import TrainConfig  # noqa: E402

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
