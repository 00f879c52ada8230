"""Exceptions raised by seqrec.

Every error a user can cause (bad file, bad config, unknown id, unfitted model)
is a :class:`SeqrecError` subclass whose message says what is wrong and what to do.
"""

from __future__ import annotations


class SeqrecError(Exception):
    """Base class of every error seqrec raises on purpose."""


class DataError(SeqrecError):
    """The data is unusable: missing file, unparsable rows, empty after cleaning, ..."""


class SchemaError(DataError):
    """Columns are missing, misnamed or of the wrong type."""


class ConfigError(SeqrecError, ValueError):
    """A configuration or experiment file is invalid (unknown key, bad value, ...)."""


class NotFittedError(SeqrecError, RuntimeError):
    """A model was used before ``fit`` (or ``load``)."""


class UnknownItemError(SeqrecError, KeyError):
    """An item id is not in the vocabulary and the policy says ``"error"``."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ArtifactError(SeqrecError):
    """A saved model directory is missing, incomplete or from an incompatible version."""


class DivergenceError(SeqrecError, ArithmeticError):
    """Training produced a non-finite loss; the message names the epoch and step."""


class DatasetNotFoundError(DataError):
    """A registered dataset is not present locally (and downloading was not allowed)."""


class RunPruned(SeqrecError):
    """A search stopped a run early after an epoch whose validation value was poor (an
    Optuna pruner); ``epoch`` and ``value`` say where. Not a failure: the search goes on."""

    def __init__(self, message: str, *, epoch: int, value: float | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.value = value


class RequestError(SeqrecError, ValueError):
    """An HTTP request to ``seqrec serve`` is invalid or over a limit; ``status`` is the
    4xx status it is answered with."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "DivergenceError",
    "NotFittedError",
    "RequestError",
    "RunPruned",
    "SchemaError",
    "SeqrecError",
    "UnknownItemError",
]
