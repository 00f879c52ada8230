"""Dotted-key overrides of raw experiment mappings, and grid points.

``--set`` strings (``"train.epochs=3"``) parse with :func:`parse_override` into ``(key,
value)`` pairs (values are TOML values, else plain strings) that :func:`apply_overrides`
sets on a raw mapping. A ``[grid]`` (``{"model.layers": [[50], [100]], ...}``) expands with
:func:`grid_points` into one set of pairs per point of its cartesian product.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from seqrec.exceptions import ConfigError
from seqrec.experiment.config import (
    DEFAULT_MODEL,
    DEFAULT_SPLIT,
    model_takes_objective,
    union_sections,
)

logger = logging.getLogger(__name__)


def parse_value(text: str) -> Any:
    """An override value: a TOML value (``3``, ``0.1``, ``true``, ``[50, 100]``,
    ``"text"``, ``{a = 1}``), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(item: str) -> tuple[str, Any]:
    """``"section.key=value"`` -> ``("section.key", value)`` (see :func:`parse_value`)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"bad override {item!r}: expected KEY=VALUE with a dotted key, e.g. "
            "train.epochs=3 or model.layers=[100]"
        )
    check_key(key, item)
    return key, parse_value(value.strip())


def check_key(key: str, context: str) -> None:
    """Raise a ConfigError unless ``key`` is a dotted path of plain names."""
    parts = key.split(".")
    if any(not p or not p.replace("_", "").replace("-", "").isalnum() for p in parts):
        raise ConfigError(
            f"bad key {key!r} in {context!r}: use dotted names such as model.layers or "
            "train.learning_rate"
        )


def _set_path(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        elif not isinstance(nxt, dict):
            raise ConfigError(
                f"cannot set {key!r}: {'.'.join(parts[: i + 1])!r} is a value, not a section"
            )
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def _switch_union(out: dict[str, Any], pairs: list[tuple[str, Any]]) -> None:
    """Where the pairs change the tag of a union section (``model.name``, ``split.method``),
    drop the section's keys the new class does not have (except those set by the pairs)."""
    defaults = {"model": DEFAULT_MODEL, "split": DEFAULT_SPLIT}
    for section, u in union_sections().items():
        tag_key = f"{section}.{u.tag_key}"
        new = next((v for k, v in pairs if k == tag_key), None)
        table = out.get(section)
        if new is None or not isinstance(table, dict):
            continue
        if table.get(u.tag_key, defaults.get(section)) == new:
            continue
        if new not in u.members:
            raise ConfigError(
                f"{tag_key}: unknown {u.noun} {new!r}; {u.known}: {', '.join(u.members)}"
            )
        fields = u.members[new].model_fields
        explicit = {k.split(".", 1)[1] for k, _ in pairs if k.startswith(f"{section}.")}
        dropped = [k for k in table if k not in fields and k not in explicit]
        if dropped:
            logger.info("%s=%s: dropping [%s] keys %s", tag_key, new, section, dropped)
        out[section] = {k: v for k, v in table.items() if k not in dropped}
        if section == "model" and "objective" in out and not model_takes_objective(new):
            if not any(k.startswith("objective.") for k, _ in pairs):
                logger.info("model.name=%s: dropping [objective] (the model takes none)", new)
                del out["objective"]


def apply_overrides(raw: Mapping[str, Any], pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of the raw config dict with dotted ``key -> value`` pairs set.

    Setting ``model.name`` to another model (or ``split.method`` to another method) drops the
    section's keys the new class does not have (except those set by the same overrides), and
    the ``[objective]`` of a model that takes none, so ``--set model.name=pop`` works on a
    GRU4Rec file and ``--set split.method=leave-one-out`` on a time-split one.
    """
    out = copy.deepcopy(dict(raw))
    pairs = list(pairs)
    _switch_union(out, pairs)
    for key, value in pairs:
        check_key(key, f"{key}=...")
        _set_path(out, key, value)
    return out


def flatten_dict(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b.c": value}`` (dotted keys, as overrides and grids use)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten_dict(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def grid_points(spec: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``{dotted key: values}``, the last key varying fastest.

    Raises
    ------
    ConfigError
        A key that is not a dotted path, or a value that is not a non-empty list.
    """
    keys = list(spec)
    for k in keys:
        check_key(k, "grid")
        values = spec[k]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(values) == 0:
            raise ConfigError(
                f"grid key {k!r} must map to a non-empty list of values, got {values!r}"
            )
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(spec[k] for k in keys))
    ]


def varying_keys(configs: Sequence[Any]) -> list[str]:
    """Dotted keys whose value differs between ``configs`` (ExperimentConfigs: the grid
    dimensions), in first-seen order; ``name`` is left out."""
    flats = [flatten_dict(c.to_dict()) for c in configs]
    keys: list[str] = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    return [
        k
        for k in keys
        if k != "name" and len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1
    ]


__all__ = [
    "apply_overrides",
    "check_key",
    "flatten_dict",
    "grid_points",
    "parse_override",
    "parse_value",
    "varying_keys",
]
