"""Data layer: vocabulary, ragged sequences, batchers, readers and synthetic data."""

from seqrec.data.readers import read_interactions, read_movielens, read_session_log
from seqrec.data.sequences import SequenceData, ragged_take
from seqrec.data.vocab import Vocabulary

__all__ = [
    "SequenceData",
    "Vocabulary",
    "ragged_take",
    "read_interactions",
    "read_movielens",
    "read_session_log",
]
