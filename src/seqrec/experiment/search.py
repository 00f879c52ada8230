"""Search spaces: grid and random points, seeds per point, point ids, and statistics over seeds.

The ``[grid]`` table of an experiment file is the search space (dotted key -> a list of
values, or for a random search also a range ``{low, high, log, integer}``); ``[search]``
(:class:`~seqrec.experiment.config.SearchConfig`) says how to walk it (``method = "grid"``:
the cartesian product; ``"random"``: ``n`` distinct points drawn with ``search.seed``) and
with which seeds each point runs. :func:`search_points` gives the points, :func:`expand` the
configs (points x seeds), :func:`point_id` the name of a point: a hash of its resolved config
without ``name`` and ``seed``, so that a point keeps its run directory when the value lists
around it grow or shrink. :func:`seed_stats` is the mean, standard deviation and 95%
t-interval of a metric over the seeds of a point.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from seqrec.exceptions import ConfigError
from seqrec.experiment.config import ExperimentConfig, RangeSpec, SearchConfig, validate_config
from seqrec.experiment.overrides import apply_overrides, check_key, grid_points

POINT_ID_LENGTH = 10
"""Hex digits of a point id (40 bits: a clash needs about a million points)."""

MAX_DRAW_ATTEMPTS = 100
"""Draws per point of a random search before a space is taken as exhausted."""


def point_id(cfg: ExperimentConfig | Mapping[str, Any]) -> str:
    """The id of a search point: a hash of its resolved config without ``name``, ``seed``,
    ``variant``, ``grid``, ``search`` and ``tracking`` (the seeds of one point share it; two
    variants that resolve to the same config are one point; logging to MLflow or not is
    the same point).

    The hash covers every resolved value, defaults included: a seqrec version that adds a
    setting gives new ids (the earlier runs are not reused, never wrongly reused).
    """
    d = dict(cfg.to_dict() if isinstance(cfg, ExperimentConfig) else cfg)
    for k in ("name", "seed", "variant", "grid", "search", "tracking"):
        d.pop(k, None)
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:POINT_ID_LENGTH]


def run_name(cfg: ExperimentConfig) -> str:
    """The directory name of one run of a search: ``<name>-<point id>-s<seed>``."""
    return f"{cfg.name}-{point_id(cfg)}-s{cfg.seed}"


def flatten_space(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested ``[grid]`` tables -> dotted keys; a table with ``low``/``high`` is a range
    (a leaf), as is a :class:`RangeSpec`."""
    out: dict[str, Any] = {}
    for k, v in space.items():
        if isinstance(v, Mapping) and not ({"low", "high"} & set(v)):
            out.update(flatten_space(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _draw(rng: np.random.Generator, dim: Any) -> Any:
    if isinstance(dim, RangeSpec):
        u = float(rng.random())
        if dim.log:
            x = math.exp(math.log(dim.low) + u * (math.log(dim.high) - math.log(dim.low)))
        else:
            x = dim.low + u * (dim.high - dim.low)
        if dim.integer:
            return int(min(max(round(x), math.ceil(dim.low)), math.floor(dim.high)))
        return float(f"{x:.4g}")  # readable values in tables and directory configs
    return dim[int(rng.integers(len(dim)))]


def _space_size(space: Mapping[str, Any]) -> float:
    size = 1.0
    for dim in space.values():
        if isinstance(dim, RangeSpec):
            if not dim.integer:
                return math.inf
            size *= math.floor(dim.high) - math.ceil(dim.low) + 1
        else:
            size *= len(dim)
    return size


def random_points(space: Mapping[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct points drawn from ``space`` (fewer when it has fewer).

    The draw is sequential (point by point, key by key, with a generator seeded by
    ``seed``): the first ``m`` points of a budget ``n > m`` are the points of budget ``m``,
    so raising ``search.n`` and resuming only runs the new points.
    """
    rng = np.random.default_rng(seed)
    keys = list(space)
    size = _space_size(space)
    seen: set[str] = set()
    points: list[dict[str, Any]] = []
    while len(points) < min(n, size):
        for _ in range(MAX_DRAW_ATTEMPTS):
            p = {k: _draw(rng, space[k]) for k in keys}
            key = json.dumps(p, sort_keys=True, default=str)
            if key not in seen:
                break
        else:
            break  # the rest of the space is (practically) exhausted
        seen.add(key)
        points.append(p)
    return points


def _check_space(space: Mapping[str, Any]) -> None:
    for k, v in space.items():
        check_key(k, "grid")
        if isinstance(v, RangeSpec):
            continue
        if isinstance(v, str | bytes) or not isinstance(v, Sequence) or len(v) == 0:
            raise ConfigError(
                f"grid key {k!r} must map to a non-empty list of values (or, for a random "
                f"search, a range {{low, high}}), got {v!r}"
            )


def search_points(
    space: Mapping[str, Any], search: SearchConfig | None = None
) -> list[dict[str, Any]]:
    """The points (``{dotted key: value}``) of a search space, in order.

    Raises
    ------
    ConfigError
        An empty space with a random search; a key that is not a dotted path; an empty or
        non-list value list; a range outside a random search.
    """
    search = search or SearchConfig()
    space = {
        k: RangeSpec.model_validate(v) if isinstance(v, Mapping) else v for k, v in space.items()
    }
    _check_space(space)
    if search.method == "optuna":
        raise ConfigError(
            "[search] method = 'optuna' chooses its points while it runs (each from the "
            "results before it): run it with seqrec.experiment.run_optuna(cfg, out_root) "
            "(seqrec run does this), not grid()/expand()"
        )
    if search.method == "random":
        if not space:
            raise ConfigError(
                "empty search space: [search] method = 'random' draws from the [grid] table; "
                'give it dimensions, e.g. [grid] "train.learning_rate" = '
                "{low = 1e-4, high = 1e-1, log = true}"
            )
        assert search.n is not None  # SearchConfig checks it
        return random_points(space, search.n, search.seed)
    ranges = [k for k, v in space.items() if isinstance(v, RangeSpec)]
    if ranges:
        raise ConfigError(
            f"grid keys {ranges} are ranges: only [search] method = 'random' draws from ranges"
        )
    return grid_points(space) if space else [{}]


def variant_points(
    variants: Mapping[str, Mapping[str, Any]], grid: Sequence[Mapping[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """``(name, point)`` for every variant crossed with every ``grid`` point (``[{}]``: no
    grid), in the file's order. A variant's table may nest (``{model = {layers = [100]}}``)
    or use dotted keys.

    Raises
    ------
    ConfigError
        A key that is not a dotted path, or a key that both a variant and the grid set.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for name, table in variants.items():
        point = flatten_space(dict(table))
        for k in point:
            check_key(k, f"search.variants.{name}")
        for g in grid or [{}]:
            both = sorted(set(point) & set(g))
            if both:
                raise ConfigError(
                    f"search.variants.{name} and [grid] both set {both}: a key is either one "
                    "variant's change or a grid dimension"
                )
            out.append((name, {**point, **g}))
    return out


def expand(cfg: ExperimentConfig, space: Mapping[str, Any] | None = None) -> list[ExperimentConfig]:
    """One validated config per run of ``cfg``'s search: points x seeds (seeds vary fastest).

    ``space`` adds dimensions (replacing the file's keys of the same names). Every point is
    validated before anything runs.

    Raises
    ------
    ConfigError
        See :func:`search_points`; more runs than ``search.max_runs`` (the message says how
        many); a point that does not validate (e.g. a key the chosen model does not have:
        the message names the point, the key and the valid keys).
    """
    search = cfg.search or SearchConfig()
    full = {**cfg.grid, **flatten_space(dict(space or {}))}
    points = search_points(full, search)
    labelled: list[tuple[str | None, dict[str, Any]]] = (
        variant_points(search.variants or {}, points)
        if search.method == "variants"
        else [(None, p) for p in points]
    )
    seeds = search.seed_list(cfg.seed)
    total = len(labelled) * len(seeds)
    if search.max_runs is not None and total > search.max_runs:
        raise ConfigError(
            f"the search is {len(labelled)} point(s) x {len(seeds)} seed(s) = {total} runs, more "
            f"than search.max_runs = {search.max_runs}; shrink the [grid] lists, lower "
            "search.n or raise search.max_runs"
        )
    base = cfg.without_search()
    out: list[ExperimentConfig] = []
    for label, point in labelled:
        raw = apply_overrides(base, point.items())
        if label is not None:
            raw["variant"] = label
        first = validate_config(raw, f"search point {label or point}")
        for s in seeds:
            out.append(first.model_copy(update={"seed": s}) if s != first.seed else first)
    return out


def seed_stats(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, sample standard deviation and 95% t-interval of the non-missing ``values``.

    ``std`` and the interval are None with fewer than two values. The interval is
    ``mean +- t(0.975, n - 1) * std / sqrt(n)`` (Student's t, as for a small number of seeds).
    """
    from scipy import stats as _st

    v = np.array([float(x) for x in values if x is not None and math.isfinite(float(x))])
    n = int(v.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    mean = float(v.mean())
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = float(v.std(ddof=1))
    half = float(_st.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def format_stats(s: Mapping[str, Any], digits: int = 4) -> str:
    """``"0.1234 ± 0.0056 [0.1100, 0.1368]"`` (just the mean with one value; ``-`` with none)."""
    if s.get("mean") is None:
        return "-"
    text = f"{s['mean']:.{digits}f}"
    if s.get("std") is not None:
        text += f" ± {s['std']:.{digits}f} [{s['ci_low']:.{digits}f}, {s['ci_high']:.{digits}f}]"
    return text


__all__ = [
    "POINT_ID_LENGTH",
    "expand",
    "flatten_space",
    "format_stats",
    "point_id",
    "random_points",
    "run_name",
    "search_points",
    "seed_stats",
    "variant_points",
]
