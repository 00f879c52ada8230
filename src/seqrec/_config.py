"""The base class of every seqrec config: pydantic, frozen, ``extra="forbid"``, and built in
Python it raises :class:`~seqrec.exceptions.ConfigError` (a ``SeqrecError``), not pydantic's
``ValidationError``.

``SomeConfig(bad_key=1)`` or ``SomeConfig(epochs="many")`` raise ``ConfigError`` whose message
names the class, each bad field and the valid keys. ``SomeConfig.model_validate(mapping)`` is
pydantic's own entry point and keeps raising ``ValidationError`` (the experiment loader turns
those into one friendly ConfigError naming dotted keys, see
:func:`seqrec.experiment.errors.friendly_errors`); use :func:`validate` for a mapping when a
``ConfigError`` is wanted.
"""

from __future__ import annotations

import contextlib
import difflib
import threading
from collections.abc import Iterator
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from seqrec.exceptions import ConfigError

_MAX_INPUT = 80


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= _MAX_INPUT else text[: _MAX_INPUT - 3] + "..."


def config_error(e: ValidationError, cls: type[BaseModel]) -> ConfigError:
    """One readable ConfigError for a ValidationError of ``cls``."""
    valid = list(cls.model_fields)
    lines: list[str] = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1]) if err.get("loc") else loc
            hint = difflib.get_close_matches(key, valid, n=1) if len(err["loc"]) == 1 else []
            msg = f"unknown key {loc!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            msg += f"; valid keys: {', '.join(valid)}" if len(err["loc"]) == 1 else ""
        else:
            text = str(err.get("msg", "")).removeprefix("Value error, ")
            got = (
                ""
                if err["type"] == "value_error" or isinstance(err.get("input"), dict)
                else f" (got {_short(err.get('input'))})"
            )
            msg = f"{loc}: {text}{got}" if loc else text
        if msg not in lines:
            lines.append(msg)
    head = f"invalid {cls.__name__}"
    if len(lines) == 1:
        return ConfigError(f"{head}: {lines[0]}")
    return ConfigError(head + ":\n" + "\n".join(f"  - {line}" for line in lines))


_state = threading.local()


@contextlib.contextmanager
def _validating() -> Iterator[None]:
    """Mark this thread as inside a pydantic validation (nested configs keep pydantic's
    errors, so that the outer call sees every error with its full location)."""
    depth = getattr(_state, "depth", 0)
    _state.depth = depth + 1
    try:
        yield
    finally:
        _state.depth = depth


class ConfigModel(BaseModel):
    """Frozen pydantic model with unknown keys forbidden; bad arguments -> ConfigError.

    Pydantic calls a custom ``__init__`` for nested models too: only the outermost call
    converts (a thread-local depth says which).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        if getattr(_state, "depth", 0):
            super().__init__(**data)
            return
        try:
            with _validating():
                super().__init__(**data)
        except ValidationError as e:
            raise config_error(e, type(self)) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:  # type: ignore[override]
        """Pydantic's ``model_validate`` (raises ``ValidationError``; see the module doc)."""
        with _validating():
            return super().model_validate(obj, *args, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:  # type: ignore[override]
        """Pydantic's ``model_validate_json`` (raises ``ValidationError``)."""
        with _validating():
            return super().model_validate_json(json_data, *args, **kwargs)


def validate(cls: type[BaseModel], data: Any) -> Any:
    """``cls.model_validate(data)`` with a ValidationError turned into a ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise config_error(e, cls) from None


__all__ = ["ConfigModel", "config_error", "validate"]
