"""Strict checks of the arguments of the public API (the facade, batch recommendation).

Python is loose where a recommender must not be: ``recommend("50")`` would iterate the
characters ``"5"``, ``"0"``; ``recommend([50.7])`` would become item 50 through an integer
cast; ``k=2.5`` would fail deep inside ``torch.topk``. These helpers turn each such call into
a :class:`~seqrec.exceptions.ConfigError` (bad argument values) or
:class:`~seqrec.exceptions.DataError` (bad ids) that names the argument and what to pass.
They are vectorised (one ``np.asarray`` per id list, as the encoding needs anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

import numpy as np

from seqrec.exceptions import ConfigError, DataError

_MAX_QUOTE = 60


def quote(value: Any, limit: int = _MAX_QUOTE) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages never quote megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """An integer argument (``bool`` and floats refused), optionally ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {quote(value)} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """A boolean argument (``0``/``1`` or strings refused: ``"false"`` is truthy)."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{name} must be True or False, got {quote(value)}")
    return bool(value)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """One of ``choices``."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        raise ConfigError(f"{name} must be one of {options}, got {quote(value)}")
    return value


def id_list(ids: Any, name: str, *, ordered: bool = True) -> list[Any] | np.ndarray:
    """A container of ids as a list (or the array itself); a string, bytes, mapping or
    (for ordered histories) a set is refused: ``recommend("50")`` is not items 5, 0."""
    if isinstance(ids, str | bytes | bytearray):
        raise DataError(
            f"{name} must be a list of item ids, got the string {quote(ids)}; pass [{quote(ids)}] "
            "for one item"
        )
    if isinstance(ids, Mapping):
        raise DataError(f"{name} must be a list of item ids, got a {type(ids).__name__}")
    if ordered and isinstance(ids, Set):
        raise DataError(
            f"{name} must be an ordered list of item ids (oldest first), got a "
            f"{type(ids).__name__}, which has no order"
        )
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise DataError(f"{name} must be a 1-D list of item ids, got shape {ids.shape}")
        return ids
    if hasattr(ids, "to_numpy") and hasattr(ids, "dtype"):  # polars / pandas Series
        return np.asarray(ids.to_numpy())
    try:
        return list(ids)
    except TypeError:
        raise DataError(
            f"{name} must be a list of item ids, got {quote(ids)} ({type(ids).__name__})"
        ) from None


def item_array(ids: Any, name: str, *, string_ids: bool) -> np.ndarray:
    """External item ids as an array of the vocabulary's kind (int64 or str).

    Integers and strings are ids; anything else is a :class:`DataError` naming the first bad
    value: floats (``50.7`` would silently be 50), booleans, ``None``, nested lists. For a
    vocabulary of string ids, integers are read as their decimal text (as the file readers
    do); for integer ids, strings are refused (they are not the same ids).
    """
    seq = id_list(ids, name)
    if isinstance(seq, list) and not seq:
        return np.asarray([], dtype=str if string_ids else np.int64)
    try:
        arr = np.asarray(seq) if not isinstance(seq, np.ndarray) else seq
    except (ValueError, TypeError):  # ragged nested lists
        raise DataError(f"{name}: item ids must be scalars, got {quote(seq)}") from None
    if arr.ndim != 1:
        raise DataError(f"{name}: item ids must be scalars, got nested lists ({quote(seq)})")
    kind = arr.dtype.kind
    if kind in "iu":
        return arr.astype(str) if string_ids else arr.astype(np.int64)
    if kind == "U" and string_ids:
        return arr
    if kind == "O":
        missing = object()
        bad = next(
            (v for v in arr.tolist() if not _is_id(v, string_ids=string_ids)),
            missing,
        )
        if bad is missing:  # ints and strs mixed, every one valid for a string vocabulary
            return arr.astype(str) if string_ids else arr.astype(np.int64)
        raise DataError(_bad_id_message(name, bad, string_ids))
    example = arr[0].item() if len(arr) else None
    raise DataError(_bad_id_message(name, example, string_ids))


def _is_id(v: Any, *, string_ids: bool) -> bool:
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, int | np.integer):
        return True
    return string_ids and isinstance(v, str)


def _bad_id_message(name: str, value: Any, string_ids: bool) -> str:
    kind = "strings (or integers)" if string_ids else "integers"
    extra = ""
    if isinstance(value, float):
        extra = "; a float id is never rounded: pass int(...) if that is what you mean"
    elif isinstance(value, str) and not string_ids:
        extra = "; this model's ids are integers: pass int(...) of the id"
    return (
        f"{name}: item ids of this model are {kind}, got {quote(value)} "
        f"({type(value).__name__}){extra}"
    )


def check_queries(queries: Any, *, unknown: Any, exclude_seen: Any) -> list[Any]:
    """The queries of a recommend call as a list of :class:`~seqrec.data.query.Query`, and
    its options checked."""
    from seqrec.data.query import Query

    check_choice(unknown, "unknown", ("drop", "error"))
    check_bool(exclude_seen, "exclude_seen")
    out = list(id_list(queries, "queries"))
    for i, q in enumerate(out):
        if not isinstance(q, Query):
            raise DataError(
                f"queries[{i}] must be a seqrec Query, got {quote(q)} ({type(q).__name__})"
            )
    return out


__all__ = [
    "check_bool",
    "check_queries",
    "check_choice",
    "check_int",
    "id_list",
    "item_array",
    "quote",
]
