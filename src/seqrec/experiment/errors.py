"""Errors of experiments: :class:`RunExistsError` and the friendly validation messages.

:func:`friendly_errors` turns a pydantic :class:`~pydantic.ValidationError` of an experiment
into one :class:`~seqrec.exceptions.ConfigError` that names each bad key by its dotted path,
lists the valid keys of its section, suggests a close match and, in a section that is a
discriminated union (``[model]`` on ``name``, ``[split]`` on ``method``), says which other
model or method a misplaced key belongs to.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from seqrec.exceptions import ConfigError, SeqrecError


class RunExistsError(SeqrecError, FileExistsError):
    """The run directory exists and neither ``overwrite`` nor ``resume`` was asked."""


@dataclass(frozen=True)
class UnionSection:
    """A top-level section whose class is chosen by a tag key (a discriminated union).

    Attributes
    ----------
    tag_key
        The key choosing the class (``"name"`` of ``[model]``, ``"method"`` of ``[split]``).
    noun
        What a tag value is called in messages (``"model"``, ``"method"``).
    known
        How the list of valid tags is introduced (``"registered models"``, ``"valid methods"``).
    members
        Tag value -> config class, in the order shown to the user.
    """

    tag_key: str
    noun: str
    known: str
    members: Mapping[str, type[BaseModel]]


def _field_model(cls: type[BaseModel], name: str) -> type[BaseModel] | None:
    """The pydantic class of field ``name`` of ``cls`` when it is a (single) section model."""
    info = cls.model_fields.get(name)
    if info is None:
        return None
    ann = info.annotation
    for c in [ann, *getattr(ann, "__args__", ())]:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _walk(
    loc: list[Any],
    root: type[BaseModel],
    unions: Mapping[str, UnionSection],
    raw: Mapping[str, Any],
    extra: bool,
) -> tuple[list[str], type[BaseModel] | None, tuple[str, str] | None]:
    """The user's key path of an error location (union tags left out), the class owning its
    last key, and ``(section, tag)`` when the path runs through a union section."""
    cls: type[BaseModel] | None = root
    owner: type[BaseModel] | None = root
    parts: list[str] = []
    union: tuple[str, str] | None = None
    pending: UnionSection | None = None
    for i, p in enumerate(loc):
        if pending is not None:
            section = parts[0]
            if isinstance(p, str) and p in pending.members:
                cls, union, pending = pending.members[p], (section, p), None
                continue
            raw_section = raw.get(section)
            tag = raw_section.get(pending.tag_key) if isinstance(raw_section, Mapping) else None
            cls = pending.members.get(tag) if isinstance(tag, str) else None
            union = (section, tag) if cls is not None else None
            pending = None
        if cls is not None and isinstance(p, str) and p in cls.model_fields:
            parts.append(p)
            owner = cls
            if cls is root and p in unions:
                pending, cls = unions[p], None
            else:
                cls = _field_model(cls, p)
        elif extra and i == len(loc) - 1:
            parts.append(str(p))
            owner = cls
        elif isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            break
    return parts, owner, union


def _unknown_key(
    parts: list[str],
    owner: type[BaseModel] | None,
    union: tuple[str, str] | None,
    unions: Mapping[str, UnionSection],
) -> str:
    bad = parts[-1]
    section = ".".join(parts[:-1])
    path = ".".join(parts).replace(".[", "[")
    where = f"[{section}]" if section else "the top level"
    valid = list(owner.model_fields) if owner is not None else []
    others: list[str] = []
    u = unions.get(section) if union is not None and union[0] == section else None
    if u is not None and union is not None:
        where += f" ({u.noun} {union[1]!r})"
        others = [t for t, c in u.members.items() if t != union[1] and bad in c.model_fields]
    msg = f"unknown key {path!r} in {where}"
    if u is not None and others:
        names = ", ".join(repr(t) for t in others)
        msg += (
            f"; {bad!r} belongs to {u.noun} {names}, not {union[1]!r} "  # type: ignore[index]
            f"(set {section}.{u.tag_key} = {others[0]!r} to use it)."
        )
    else:
        hint = difflib.get_close_matches(bad, valid, n=1)
        if hint:
            msg += f"; did you mean {'.'.join([*parts[:-1], hint[0]])!r}?"
    return msg + f" Valid keys: {', '.join(valid)}"


def friendly_errors(
    e: ValidationError,
    raw: Mapping[str, Any],
    source: str,
    *,
    root: type[BaseModel],
    unions: Mapping[str, UnionSection],
) -> ConfigError:
    """One ConfigError naming each bad key path and the valid keys (see the module doc).

    Parameters
    ----------
    e
        The error of ``root.model_validate(raw)``.
    raw
        The validated mapping (to read union tags the error locations leave out).
    source
        Where the config came from (a file name), shown in the message head.
    root
        The top-level config class.
    unions
        The top-level union sections by field name.
    """
    lines: list[str] = []
    for err in e.errors():
        typ = err["type"]
        parts, owner, union = _walk(
            list(err["loc"]), root, unions, raw, extra=typ == "extra_forbidden"
        )
        path = ".".join(parts).replace(".[", "[") or "(top level)"
        if typ == "extra_forbidden" and parts:
            msg = _unknown_key(parts, owner, union, unions)
        elif typ == "union_tag_invalid" and parts and parts[0] in unions:
            u = unions[parts[0]]
            inp = err["input"]
            tag = inp.get(u.tag_key) if isinstance(inp, Mapping) else inp
            msg = (
                f"{parts[0]}.{u.tag_key}: unknown {u.noun} {tag!r}; "
                f"{u.known}: {', '.join(u.members)}"
            )
        elif typ == "union_tag_not_found" and parts and parts[0] in unions:
            u = unions[parts[0]]
            msg = (
                f"[{parts[0]}] must be a table with {u.tag_key} = one of {', '.join(u.members)}; "
                f"got {err['input']!r}"
            )
        elif typ == "missing":
            msg = f"missing key {path!r}"
            if path == "data":
                msg += " (add a [data] section with dataset = ... or path = ...)"
        else:
            text = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            got = "" if typ == "value_error" or isinstance(shown, Mapping) else f" (got {shown!r})"
            msg = text if not parts and typ == "value_error" else f"{path}: {text}{got}"
        if msg not in lines:
            lines.append(msg)
    head = f"invalid experiment config ({source})" if source else "invalid experiment config"
    if len(lines) == 1:
        return ConfigError(f"{head}: {lines[0]}")
    return ConfigError(head + ":\n" + "\n".join(f"  - {line}" for line in lines))


__all__ = ["RunExistsError", "UnionSection", "friendly_errors"]
