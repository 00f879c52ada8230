"""Experiments: one typed config file -> one run directory.

An experiment file (TOML or YAML) has the sections ``[data]``, ``[preprocess]``, ``[split]``,
``[model]``, ``[objective]``, ``[train]``, ``[eval]`` plus the top-level keys ``name`` and
``seed``, and optionally a ``[grid]`` table. Each section maps onto one frozen pydantic model
(unknown keys are errors); ``model.name`` selects the model from the explicit registry
:data:`seqrec.models.MODELS` and the other ``[model]`` keys validate against that model's
config class (a ``[model]`` table without ``name`` means ``"gru4rec"``).

::

    name = "ml100k_gru4rec"
    seed = 0

    [data]
    dataset = "ml-100k"          # or: path = "events.csv"

    [split]
    method = "time"
    test_days = 14

    [model]
    name = "gru4rec"
    layers = [100]

    [grid]                       # optional: the cartesian product is run by run_grid
    "train.learning_rate" = [0.05, 0.1]

:func:`run` reads, cleans and splits the data (:func:`prepare_data`), trains a
:class:`~seqrec.recommender.Recommender`, evaluates it and writes a run directory::

    runs/<name>/
      config.resolved.toml   every setting, defaults included (reload with load_experiment)
      metrics.json           valid/test reports with their protocol, training history,
                             data statistics, timings
      log.txt                the log of the run
      artifact/              the saved model (Recommender.load)

The directory is written into a temporary sibling and renamed into place at the end, so a
failed or interrupted run never leaves a half-written run (or model) behind.

Choices (documented deviations from "anything goes"):

* ``seed`` is an integer (default 0): runs are reproducible; TOML has no null.
* Relative ``data.path`` / ``data.data_dir`` resolve from the current directory.
* The model is trained on the ``train`` part only; ``valid`` is used for per-epoch
  validation (and early stopping with ``train.patience``) and both parts are evaluated.
* Only :func:`run` seeds the global RNGs (``random``, NumPy, torch) — library code never does.
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import difflib
import io
import itertools
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import tomli_w
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seqrec._io import replace_dir
from seqrec.columns import Columns
from seqrec.evaluate import EvalReport, Ties
from seqrec.exceptions import ConfigError, DataError, SeqrecError
from seqrec.losses import ObjectiveConfig
from seqrec.metrics import parse_metrics
from seqrec.models import MODELS, GRU4RecConfig, ModelConfig
from seqrec.preprocess import event_counts
from seqrec.recommender import Recommender
from seqrec.train import TrainConfig

logger = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
"""``data.dataset`` value selecting :func:`seqrec.data.synthetic.synthetic_sessions`."""

RESOLVED_CONFIG = "config.resolved.toml"
METRICS_FILE = "metrics.json"
LOG_FILE = "log.txt"
ARTIFACT_DIR = "artifact"
SUMMARY_FILE = "summary.csv"


class RunExistsError(SeqrecError, FileExistsError):
    """The run directory exists and neither ``overwrite`` nor ``resume`` was asked."""


# ============================================================================ sections
class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyntheticConfig(_Section):
    """Arguments of :func:`seqrec.data.synthetic.synthetic_sessions` (``[data.synthetic]``)."""

    n_sessions: int = Field(2000, ge=1)
    n_items: int = Field(200, ge=2)
    mean_length: float = Field(8.0, ge=2.0)
    p_follow: float = Field(0.9, ge=0.0, le=1.0)
    seed: int = 0
    start_time: float = 1.6e9
    span_days: float = Field(60.0, gt=0.0)


class DataConfig(_Section):
    """Where the events come from (``[data]``): a registered dataset or a file.

    Parameters
    ----------
    dataset
        A name of :data:`seqrec.datasets.DATASETS` (``"ml-100k"``, ``"ml-1m"``,
        ``"yoochoose-100k"``) found under ``data_dir``, ``$SEQREC_DATA`` or the user cache,
        or ``"synthetic"`` (generated from ``[data.synthetic]``, no file needed).
    path
        An event file (CSV/TSV, optionally gzip-compressed, or Parquet). Exactly one of
        ``dataset`` and ``path``.
    format
        How to read ``path``: ``"movielens"`` (``u.data`` / ``ratings.dat``),
        ``"session-log"`` (GRU4Rec TSV ``SessionId ItemId Time``), ``"generic"``
        (:func:`~seqrec.data.read_interactions` with ``columns``/``sep``/``time_unit``) or
        ``"auto"`` (MovieLens for a file called ``u.data``/``ratings.dat``, else generic).
    columns, sep, time_unit
        Passed to :func:`~seqrec.data.read_interactions` (generic format only).
    data_dir
        Extra root searched first for registered datasets.
    download
        Fetch a registered dataset that is not found locally (off by default).
    synthetic
        Settings of the synthetic generator (only with ``dataset = "synthetic"``).
    """

    dataset: str | None = None
    path: str | None = None
    format: Literal["auto", "movielens", "session-log", "generic"] = "auto"
    columns: dict[str, str | int] | None = None
    sep: str | None = None
    time_unit: Literal["s", "ms", "datetime"] = "s"
    data_dir: str | None = None
    download: bool = False
    synthetic: SyntheticConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        from seqrec.datasets import DATASETS

        if (self.dataset is None) == (self.path is None):
            raise ValueError(
                "set exactly one of data.dataset (a registered name or 'synthetic') and "
                "data.path (an event file)"
            )
        if self.dataset is not None and self.dataset != SYNTHETIC and self.dataset not in DATASETS:
            raise ValueError(
                f"unknown dataset {self.dataset!r}; registered: {sorted(DATASETS)} or "
                f"{SYNTHETIC!r}; for your own file set data.path instead"
            )
        if self.synthetic is not None and self.dataset != SYNTHETIC:
            raise ValueError("[data.synthetic] is only used with dataset = 'synthetic'")
        if self.path is None and (
            self.columns is not None or self.sep is not None or self.format != "auto"
        ):
            raise ValueError("data.columns, data.sep and data.format apply to data.path only")
        return self


class PreprocessConfig(_Section):
    """Cleaning before the split (``[preprocess]``), applied in this order.

    Parameters
    ----------
    min_rating
        Keep events with ``rating >= min_rating`` (needs a rating column); None: keep all.
    session_gap_seconds
        Cut sessions at time gaps larger than this (users -> sessions when the data has a
        user column, else existing sessions are split); None: keep the sessions as read.
    drop_consecutive_repeats
        Drop an event repeating the previous item of its session.
    min_session_length, min_item_support
        Drop sessions shorter than this and items with fewer events, repeated to a fixed
        point when ``until_stable`` (the largest sub-log meeting both, as
        :func:`seqrec.preprocess.clean`); one round otherwise. 1 disables a filter.
    """

    min_session_length: int = Field(2, ge=1)
    min_item_support: int = Field(5, ge=1)
    until_stable: bool = True
    min_rating: float | None = None
    drop_consecutive_repeats: bool = False
    session_gap_seconds: float | None = Field(None, gt=0.0)


class SplitConfig(_Section):
    """How to split into train / valid / test (``[split]``).

    ``method`` chooses the splitter of :mod:`seqrec.split`; each uses some of the keys:

    * ``"time"`` (:func:`~seqrec.split.split_by_time`): ``test_days``, ``valid_days``
      (0: no valid part), ``by``, ``train_items_only``, ``min_item_support_eval``,
      ``min_session_length_eval``;
    * ``"leave-one-out"`` (:func:`~seqrec.split.leave_last_out`): ``n`` events held out per
      sequence, ``valid`` (also hold out the ``n`` before them);
    * ``"ratio"`` (:func:`~seqrec.split.split_by_ratio`): ``test_ratio``, ``valid_ratio``;
    * ``"presplit"`` (:func:`~seqrec.split.presplit`): the dataset's ``column``
      (``"train"``/``"valid"``/``"test"``, e.g. ``yoochoose-100k``), ``train_items_only``,
      ``min_item_support_eval``, ``min_session_length_eval``.
    """

    method: Literal["time", "leave-one-out", "ratio", "presplit"] = "time"
    test_days: float = Field(14.0, gt=0.0)
    valid_days: float = Field(14.0, ge=0.0)
    by: Literal["session_end", "event"] = "session_end"
    n: int = Field(1, ge=1)
    valid: bool = True
    test_ratio: float = Field(0.2, gt=0.0, lt=1.0)
    valid_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    column: str = "split"
    train_items_only: bool = True
    min_item_support_eval: int = Field(1, ge=1)
    min_session_length_eval: int = Field(2, ge=1)


class EvalConfig(_Section):
    """Evaluation protocol (``[eval]``), recorded in every report.

    Parameters
    ----------
    metrics
        ``"name@k"`` strings: recall, mrr, ndcg, hit.
    ties
        Rank of a target tied with other items: ``"conservative"`` (below all of them),
        ``"optimistic"``, ``"average"``.
    exclude_seen
        Mask the items seen earlier in the session.
    candidates
        ``"full"`` ranking (default) or an int: the target among that many uniformly sampled
        negatives (a *sampled* metric, flagged as such in the protocol).
    on
        The parts evaluated after training.
    """

    metrics: list[str] = Field(
        default_factory=lambda: ["recall@20", "mrr@20", "ndcg@20"], min_length=1
    )
    ties: Ties = "conservative"
    exclude_seen: bool = False
    candidates: Literal["full"] | int = "full"
    on: list[Literal["valid", "test"]] = Field(default_factory=lambda: ["valid", "test"])

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        try:
            parse_metrics(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v: Literal["full"] | int) -> Literal["full"] | int:
        if isinstance(v, int) and v < 1:
            raise ValueError("candidates must be 'full' or a positive number of negatives")
        return v


class ExperimentConfig(_Section):
    """A whole experiment: data -> preprocess -> split -> model/objective/train -> eval.

    ``grid`` maps dotted keys to lists of values (see :func:`grid`); it is empty in the
    expanded configs and in every resolved config written by :func:`run`.
    """

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = 0
    data: DataConfig
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=GRU4RecConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        try:
            parse_metrics([self.train.valid_metric])
        except ConfigError as e:
            raise ValueError(f"train.valid_metric: {e}") from None
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, None values and an empty grid left out (TOML has no null)."""
        d = _drop_none(self.model_dump(mode="json"))
        if not d.get("grid"):
            d.pop("grid", None)
        return d

    def to_toml(self) -> str:
        """The resolved config as TOML (reload it with :func:`load_experiment`)."""
        return _compact_toml(tomli_w.dumps(self.to_dict()))


# ====================================================================== error messages
def _field_model(
    cls: type[BaseModel], name: str, raw_model_name: Any = None
) -> type[BaseModel] | None:
    """The pydantic class of field ``name`` of ``cls`` when it is a (single) section model."""
    if cls is ExperimentConfig and name == "model":
        return MODELS[raw_model_name][0] if raw_model_name in MODELS else None
    info = cls.model_fields.get(name)
    if info is None:
        return None
    ann = info.annotation
    candidates = [ann, *getattr(ann, "__args__", ())]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _friendly_errors(e: ValidationError, raw: Mapping[str, Any], source: str) -> ConfigError:
    """Turn a pydantic error into one ConfigError naming each bad key path and the valid keys."""
    model_name = raw.get("model", {}).get("name") if isinstance(raw.get("model"), Mapping) else None
    lines: list[str] = []
    seen: set[str] = set()
    for err in e.errors():
        loc = list(err["loc"])
        cls: type[BaseModel] | None = ExperimentConfig
        parts: list[str] = []
        owner: type[BaseModel] | None = ExperimentConfig
        for i, p in enumerate(loc):
            if cls is not None and isinstance(p, str) and p in cls.model_fields:
                parts.append(p)
                owner = cls
                cls = _field_model(cls, p, model_name)
                if parts == ["model"] and i + 1 < len(loc) and loc[i + 1] in MODELS:
                    cls = MODELS[loc[i + 1]][0]
            elif parts == ["model"] and p in MODELS:
                continue
            elif err["type"] == "extra_forbidden" and i == len(loc) - 1:
                parts.append(str(p))
                owner = cls
            elif isinstance(p, int):
                parts.append(f"[{p}]")
            else:
                break
        path = ".".join(parts).replace(".[", "[") or "(top level)"
        typ = err["type"]
        if typ == "extra_forbidden":
            bad = parts[-1] if parts else str(loc[-1])
            section = ".".join(parts[:-1])
            where = f"[{section}]" if section else "the top level"
            if section == "model" and owner is not None and "name" in owner.model_fields:
                where += f" (model {owner.model_fields['name'].default!r})"
            valid = list(owner.model_fields) if owner is not None else []
            hint = difflib.get_close_matches(bad, valid, n=1)
            msg = f"unknown key {path!r} in {where}"
            if hint:
                msg += f"; did you mean {'.'.join([*parts[:-1], hint[0]])!r}?"
            msg += f" Valid keys: {', '.join(valid)}"
        elif typ == "union_tag_invalid":
            msg = f"model.name: unknown model {err['input'].get('name') if isinstance(err['input'], Mapping) else err['input']!r}; registered models: {', '.join(MODELS)}"
            path = "model.name"
        elif typ == "missing":
            msg = f"missing key {path!r}"
            if path == "data":
                msg += " (add a [data] section with dataset = ... or path = ...)"
        else:
            text = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            got = "" if typ == "value_error" or isinstance(shown, Mapping) else f" (got {shown!r})"
            msg = f"{path}: {text}{got}"
        key = msg
        if key in seen:
            continue
        seen.add(key)
        lines.append(msg)
    head = f"invalid experiment config ({source})" if source else "invalid experiment config"
    if len(lines) == 1:
        return ConfigError(f"{head}: {lines[0]}")
    return ConfigError(head + ":\n" + "\n".join(f"  - {line}" for line in lines))


def _validate(raw: Mapping[str, Any], source: str = "") -> ExperimentConfig:
    raw = dict(raw)
    if isinstance(raw.get("model"), Mapping) and "name" not in raw["model"]:
        raw["model"] = {"name": "gru4rec", **raw["model"]}
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        raise _friendly_errors(e, raw, source) from None


# ========================================================================== overrides
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
    _check_key(key, item)
    return key, parse_value(value.strip())


def _check_key(key: str, context: str) -> None:
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


def apply_overrides(raw: Mapping[str, Any], pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of the raw config dict with dotted ``key -> value`` pairs set.

    Setting ``model.name`` to another model drops the ``[model]`` keys the new model does not
    have (except those set by the same overrides), so ``--set model.name=pop`` works on a
    GRU4Rec file.
    """
    out = copy.deepcopy(dict(raw))
    pairs = list(pairs)
    new_name = next((v for k, v in pairs if k == "model.name"), None)
    model = out.get("model")
    if (
        new_name is not None
        and isinstance(model, dict)
        and model.get("name", "gru4rec") != new_name
    ):
        if new_name not in MODELS:
            raise ConfigError(
                f"model.name: unknown model {new_name!r}; registered models: {', '.join(MODELS)}"
            )
        fields = MODELS[new_name][0].model_fields
        explicit = {k.split(".", 1)[1] for k, _ in pairs if k.startswith("model.")}
        dropped = [k for k in model if k not in fields and k not in explicit]
        if dropped:
            logger.info("model.name=%s: dropping [model] keys %s", new_name, dropped)
        out["model"] = {k: v for k, v in model.items() if k not in dropped}
    for key, value in pairs:
        _check_key(key, f"{key}=...")
        _set_path(out, key, value)
    return out


# ============================================================================ loading
def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"experiment file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; pass an experiment file (.toml or .yaml)")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    else:
        raise ConfigError(
            f"{path}: unknown experiment file type {suffix!r}; use .toml, .yaml or .yml"
        )
    return raw


def _flatten_grid(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"layers": [...]}}`` -> ``{"model.layers": [...]}`` (unquoted TOML keys)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten_grid(v, key + "."))
        else:
            out[key] = v
    return out


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read and validate an experiment file (TOML or YAML) with ``--set``-style overrides.

    Parameters
    ----------
    path
        A ``.toml``, ``.yaml`` or ``.yml`` file.
    overrides
        ``"section.key=value"`` strings applied in order; values are TOML values, else plain
        strings: ``"train.epochs=3"``, ``"model.layers=[200]"``, ``"model.name=pop"``.

    Returns
    -------
    ExperimentConfig
        With the file's ``[grid]`` table, if any, in ``grid`` (expand it with :func:`grid`).

    Raises
    ------
    ConfigError
        Missing/unparsable file, bad override syntax, unknown keys (the message names the key
        path and the valid keys) or invalid values.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "exp.toml"
    >>> _ = f.write_text('[data]\\ndataset = "synthetic"\\n[model]\\nname = "gru4rec"\\n')
    >>> load_experiment(f, ["model.layers=[32]", "train.epochs=2"]).model.layers
    [32]
    """
    path = Path(path)
    raw = _read_file(path)
    if "grid" in raw and isinstance(raw["grid"], Mapping):
        raw["grid"] = _flatten_grid(raw["grid"])
    pairs = [parse_override(o) for o in overrides]
    raw = apply_overrides(raw, pairs)
    return _validate(raw, source=str(path) + (" with overrides" if pairs else ""))


# =============================================================================== grid
def grid(
    config: str | Path | ExperimentConfig,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    overrides: Sequence[str] = (),
) -> list[ExperimentConfig]:
    """Expand the cartesian product of dotted keys into one config per grid point.

    Parameters
    ----------
    config
        An experiment file or config; its own ``[grid]`` table is used too.
    grid
        ``{"model.layers": [[50], [100]], "train.learning_rate": [0.001, 0.005]}``; its keys
        override the file's grid keys of the same name.
    overrides
        ``--set`` strings applied before expanding (only with a path).

    Returns
    -------
    list of ExperimentConfig
        In product order (the last key varies fastest), each with an empty ``grid``; one
        config (the input without its grid) when there is no grid at all.

    Raises
    ------
    ConfigError
        A key that is not a dotted path, an empty or non-list value list, or a grid point
        that does not validate (the message names the point).

    Examples
    --------
    >>> cfg = ExperimentConfig(data=DataConfig(dataset="synthetic"))
    >>> len(grid(cfg, {"model.layers": [[50], [100]], "train.learning_rate": [0.01, 0.1]}))
    4
    """
    if isinstance(config, ExperimentConfig):
        if overrides:
            raise ConfigError(
                "grid(): overrides apply to a file path; pass them to load_experiment"
            )
        cfg = config
    else:
        cfg = load_experiment(config, overrides)
    spec: dict[str, Sequence[Any]] = {**cfg.grid, **_flatten_grid(dict(grid or {}))}
    base = cfg.model_dump(mode="json")
    base.pop("grid", None)
    base = _drop_none(base)
    if not spec:
        return [_validate(base, "config")]
    keys = list(spec)
    for k in keys:
        _check_key(k, "grid")
        values = spec[k]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(values) == 0:
            raise ConfigError(
                f"grid key {k!r} must map to a non-empty list of values, got {values!r}"
            )
    out = []
    for combo in itertools.product(*(spec[k] for k in keys)):
        point = dict(zip(keys, combo, strict=True))
        raw = apply_overrides(base, point.items())
        out.append(_validate(raw, f"grid point {point}"))
    return out


# ======================================================================== data prep
_counts = event_counts  # shared with the preprocessor


def read_data(cfg: DataConfig) -> pl.DataFrame:
    """The canonical event frame of a ``[data]`` section."""
    from seqrec.data.readers import read_interactions, read_movielens, read_session_log
    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.datasets import load_dataset

    if cfg.dataset == SYNTHETIC:
        s = cfg.synthetic or SyntheticConfig()
        return synthetic_sessions(**s.model_dump())
    if cfg.dataset is not None:
        return load_dataset(cfg.dataset, data_dir=cfg.data_dir, download=cfg.download)
    path = Path(str(cfg.path)).expanduser()
    fmt = cfg.format
    if fmt == "auto":
        fmt = "movielens" if path.name in ("u.data", "ratings.dat") else "generic"
    if fmt == "movielens":
        return read_movielens(path)
    if fmt == "session-log":
        return read_session_log(path)
    return read_interactions(path, columns=cfg.columns, sep=cfg.sep, time_unit=cfg.time_unit)


def apply_preprocess(
    df: pl.DataFrame, cfg: PreprocessConfig
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Apply the ``[preprocess]`` section; returns the frame and what each stage kept."""
    from seqrec.preprocess import (
        DropConsecutiveRepeats,
        MinItemSupport,
        MinRating,
        MinSessionLength,
        Preprocessor,
        Sessionize,
    )

    info: dict[str, Any] = {"input": _counts(df)}
    if cfg.min_rating is not None:
        df = MinRating(cfg.min_rating)(df)
        info["after_min_rating"] = _counts(df)
    if cfg.session_gap_seconds is not None:
        by = Columns.user if Columns.user in df.columns else Columns.session
        df = Sessionize(gap_seconds=cfg.session_gap_seconds, by=by)(df)
        info["after_sessionize"] = _counts(df)
    if cfg.drop_consecutive_repeats:
        df = DropConsecutiveRepeats()(df)
        info["after_drop_consecutive_repeats"] = _counts(df)
    steps = []
    if cfg.min_session_length > 1:
        steps.append(MinSessionLength(cfg.min_session_length))
    if cfg.min_item_support > 1:
        steps.append(MinItemSupport(cfg.min_item_support))
    if steps:
        pre = Preprocessor(steps, until_stable=cfg.until_stable)
        df = pre(df)
        info["filter_rounds"] = len(pre.history_) - 1
        info["converged"] = pre.converged_
    info["output"] = _counts(df)
    if df.height == 0:
        raise DataError(
            f"preprocessing removed every event ({info}); lower preprocess.min_item_support / "
            "min_session_length or check min_rating"
        )
    return df, info


def make_split(df: pl.DataFrame, cfg: SplitConfig) -> Any:
    """Split a cleaned frame as the ``[split]`` section says (a :class:`seqrec.split.Split`)."""
    from seqrec import split as S

    if cfg.method == "time":
        return S.split_by_time(
            df,
            test_days=cfg.test_days,
            valid_days=cfg.valid_days,
            by=cfg.by,
            train_items_only=cfg.train_items_only,
            min_item_support_eval=cfg.min_item_support_eval,
            min_session_length_eval=cfg.min_session_length_eval,
        )
    if cfg.method == "leave-one-out":
        return S.leave_last_out(df, n=cfg.n, valid=cfg.valid)
    if cfg.method == "ratio":
        return S.split_by_ratio(df, test_ratio=cfg.test_ratio, valid_ratio=cfg.valid_ratio)
    return S.presplit(
        df,
        cfg.column,
        train_items_only=cfg.train_items_only,
        min_item_support_eval=cfg.min_item_support_eval,
        min_session_length_eval=cfg.min_session_length_eval,
    )


def prepare_data(cfg: ExperimentConfig) -> tuple[Any, dict[str, Any]]:
    """Read -> preprocess -> split as configured.

    Returns
    -------
    (Split, dict)
        The split and JSON-ready statistics: counts after reading (``read``), after each
        preprocessing stage (``preprocess``), per part (``split``), the split protocol and
        ``timings`` in seconds.
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    df = read_data(cfg.data)
    timings["read"] = time.perf_counter() - t
    logger.info("read %s: %d events", cfg.data.dataset or cfg.data.path, df.height)
    t = time.perf_counter()
    df, pre_info = apply_preprocess(df, cfg.preprocess)
    timings["preprocess"] = time.perf_counter() - t
    logger.info("preprocess: %s -> %s", pre_info["input"], pre_info["output"])
    t = time.perf_counter()
    split = make_split(df, cfg.split)
    timings["split"] = time.perf_counter() - t
    counts = split.protocol.get("counts") or {
        name: _counts(part)
        for name, part in (("train", split.train), ("valid", split.valid), ("test", split.test))
        if part is not None
    }
    logger.info("split (%s): %s", cfg.split.method, counts)
    stats = {
        "read": pre_info["input"],
        "preprocess": pre_info,
        "split": counts,
        "split_protocol": split.protocol,
        "timings": timings,
    }
    return split, stats


# ================================================================================ run
@dataclass
class RunResult:
    """What :func:`run` produced.

    Attributes
    ----------
    out_dir
        The run directory.
    config
        The experiment config that ran.
    metrics
        The content of ``metrics.json``.
    reports
        ``{"valid": EvalReport, "test": EvalReport}`` (the parts evaluated).
    recommender
        The fitted model (None for a resumed run, or in :func:`run_grid` results).
    """

    out_dir: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    reports: dict[str, EvalReport] = field(default_factory=dict)
    recommender: Recommender | None = None

    def table(self) -> str:
        """Metrics per part as a readable table (rows: metrics, columns: parts)."""
        return metrics_table(self.reports)


def metrics_table(reports: Mapping[str, EvalReport]) -> str:
    """A readable table of several reports (rows: metrics; columns: the report names)."""
    if not reports:
        return "(nothing evaluated)"
    names = list(reports)
    metric_names: list[str] = []
    for r in reports.values():
        metric_names += [m for m in r.metrics if m not in metric_names]
    rows = [[m, *[_fmt(reports[n].metrics.get(m)) for n in names]] for m in metric_names]
    rows.append(["queries", *[str(reports[n].n_queries) for n in names]])
    table = format_table(["metric", *names], rows)
    first = next(iter(reports.values())).protocol
    return (
        table
        + f"\n({first.get('candidates')} ranking, ties={first.get('ties')}, exclude_seen={first.get('exclude_seen')})"
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [
        [c if isinstance(c, str) else _fmt(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def _bracket_depth(line: str) -> int:
    """Net ``[`` minus ``]`` outside TOML strings on one line."""
    depth, quote, escaped = 0, "", False
    for ch in line:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth


def _compact_toml(text: str, width: int = 100) -> str:
    """Put the arrays tomli_w spreads over many lines back on one line when they fit."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if " = " in line and line.rstrip().endswith("[") and _bracket_depth(line) > 0:
            depth, j, parts = _bracket_depth(line), i, [line.rstrip()]
            while depth > 0 and j + 1 < len(lines):
                j += 1
                parts.append(lines[j].strip())
                depth += _bracket_depth(lines[j])
            joined = " ".join(parts).replace("[ ", "[").replace(", ]", "]")
            if len(joined) <= width:
                out.append(joined)
                i = j + 1
                continue
        out.append(line)
        i += 1
    compact = "\n".join(out) + "\n"
    try:
        same = tomllib.loads(compact) == tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        same = False
    return compact if same else text


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - run() seeds globals on purpose
    torch.manual_seed(seed)


def _report_from_dict(d: Mapping[str, Any]) -> EvalReport:
    return EvalReport(
        metrics=dict(d.get("metrics", {})),
        protocol=dict(d.get("protocol", {})),
        n_queries=int(d.get("n_queries", 0)),
        seconds=float(d.get("seconds") or 0.0),
        extra=dict(d.get("extra", {})),
    )


def load_run(run_dir: str | Path) -> RunResult:
    """Read a finished run directory (config, metrics, reports; the model is not loaded)."""
    run_dir = Path(run_dir)
    cfg_file, metrics_file = run_dir / RESOLVED_CONFIG, run_dir / METRICS_FILE
    if not cfg_file.is_file() or not metrics_file.is_file():
        raise DataError(
            f"{run_dir} is not a finished seqrec run (no {RESOLVED_CONFIG} / {METRICS_FILE})"
        )
    cfg = load_experiment(cfg_file)
    metrics = json.loads(metrics_file.read_text())
    reports = {
        p: _report_from_dict(metrics[p])
        for p in ("valid", "test")
        if isinstance(metrics.get(p), Mapping)
    }
    return RunResult(out_dir=run_dir, config=cfg, metrics=metrics, reports=reports)


class _RunLog:
    """Attach a FileHandler for the ``seqrec`` loggers during a run (INFO and above)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _RunLog:
        self.logger = logging.getLogger("seqrec")
        self.handler = logging.FileHandler(self.path, encoding="utf-8")
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
        self.old_level = self.logger.level
        if self.logger.getEffectiveLevel() > logging.INFO:
            self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        self.logger.setLevel(self.old_level)


def run(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
) -> RunResult:
    """Run one experiment into ``out_dir`` (atomically) and return its results.

    Steps: seed the global RNGs with ``cfg.seed``; :func:`prepare_data`; fit a
    :class:`~seqrec.recommender.Recommender` on ``train`` (validating on ``valid`` per
    epoch when there is one); evaluate on each part of ``cfg.eval.on``; save. Everything
    is written into a temporary sibling directory renamed to ``out_dir`` at the end.

    Parameters
    ----------
    progress
        Show progress bars (tqdm on stderr) while training and evaluating.
    overwrite
        Replace an existing ``out_dir`` (only once the new run has succeeded).
    resume
        If ``out_dir`` holds a finished run of the same config, return it without running
        again (lets an interrupted :func:`run_grid` continue); a different config is an error.

    Raises
    ------
    RunExistsError
        ``out_dir`` exists and neither ``overwrite`` nor ``resume`` was given.
    ConfigError
        ``cfg`` still has a ``grid`` (expand it with :func:`grid` / :func:`run_grid`).
    """
    if not isinstance(cfg, ExperimentConfig):
        raise ConfigError(
            f"run() needs an ExperimentConfig, got {type(cfg).__name__}; see load_experiment()"
        )
    if cfg.grid:
        raise ConfigError(
            f"experiment {cfg.name!r} has a [grid] over {list(cfg.grid)}; expand it with "
            "run_grid(grid(cfg), out_root) (seqrec run does this)"
        )
    out_dir = Path(out_dir)
    if out_dir.exists():
        if resume:
            done = load_run(out_dir) if (out_dir / METRICS_FILE).is_file() else None
            if done is None:
                raise RunExistsError(
                    f"{out_dir} exists but is not a finished run; remove it or use overwrite"
                )
            if done.config.to_dict() != cfg.to_dict():
                raise RunExistsError(
                    f"{out_dir} holds a finished run of a different config; use overwrite to replace it "
                    "or another output directory"
                )
            logger.info("resume: %s is finished, not running it again", out_dir)
            return done
        if not overwrite:
            raise RunExistsError(
                f"run directory {out_dir} already exists; pass overwrite=True (seqrec run "
                "--overwrite) to replace it, resume=True (--resume) to keep a finished run, or "
                "choose another output directory (--out)"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        with _RunLog(tmp / LOG_FILE):
            result = _run_into(cfg, tmp, progress=progress)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.out_dir = out_dir
    return result


def _run_into(cfg: ExperimentConfig, tmp: Path, *, progress: bool) -> RunResult:
    from seqrec import __version__

    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    header = (
        f"# resolved experiment config, written by seqrec {__version__} on {started}\n"
        "# reload it with seqrec.experiment.load_experiment(path) or `seqrec run` this file\n"
    )
    (tmp / RESOLVED_CONFIG).write_text(header + cfg.to_toml(), encoding="utf-8")
    logger.info("experiment %r (seqrec %s), seed %d", cfg.name, __version__, cfg.seed)
    logger.info("config: %s", json.dumps(cfg.to_dict(), sort_keys=False))
    _seed_everything(cfg.seed)

    split, stats = prepare_data(cfg)
    timings = dict(stats.pop("timings"))

    train_cfg = cfg.train.model_copy(update={"progress": bool(progress and cfg.train.progress)})
    rec = Recommender(cfg.model, cfg.objective, train_cfg, seed=cfg.seed)
    t = time.perf_counter()
    rec.fit(split.train, split.valid)
    timings["fit"] = time.perf_counter() - t
    history = [
        {
            "epoch": h.epoch,
            "loss": h.loss,
            "events": h.events,
            "seconds": h.seconds,
            "events_per_second": h.events_per_second,
            "valid": h.valid,
        }
        for h in rec.history_
    ]
    for h in history:
        logger.info(
            "epoch %d: loss %.5f, %.1fs, %.0f events/s%s",
            h["epoch"],
            h["loss"],
            h["seconds"],
            h["events_per_second"],
            f", valid {h['valid']}" if h["valid"] else "",
        )
    train_events = sum(h["events"] for h in history)
    train_seconds = sum(h["seconds"] for h in history)

    reports: dict[str, EvalReport] = {}
    for part in cfg.eval.on:
        frame = split.valid if part == "valid" else split.test
        if frame is None:
            logger.warning("eval.on has %r but the split has no %s part; skipped", part, part)
            continue
        t = time.perf_counter()
        report = rec.evaluate(
            frame,
            metrics=cfg.eval.metrics,
            ties=cfg.eval.ties,
            exclude_seen=cfg.eval.exclude_seen,
            candidates=cfg.eval.candidates,
            split=part,
            progress=progress,
        )
        timings[f"evaluate_{part}"] = time.perf_counter() - t
        report.protocol["data_split"] = split.protocol
        reports[part] = report
        logger.info("%s: %s (%d queries)", part, report.metrics, report.n_queries)

    metrics: dict[str, Any] = {
        "name": cfg.name,
        "seqrec_version": __version__,
        "started": started,
        "model": cfg.model.name,
        **{part: r.to_dict() for part, r in reports.items()},
        "history": history,
        "train": {
            "epochs": len(history),
            "seconds": timings["fit"],
            "epoch_seconds": train_seconds,
            "events": train_events,
            "events_per_second": train_events / train_seconds if train_seconds > 0 else None,
            "final_loss": history[-1]["loss"] if history else None,
        },
        "data": stats,
        "timings": timings,
    }
    t = time.perf_counter()
    rec.save(
        tmp / ARTIFACT_DIR,
        metadata={"experiment": cfg.name, "metrics": {p: r.metrics for p, r in reports.items()}},
    )
    timings["save"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    metrics["finished"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    metrics = _json_safe(metrics)
    (tmp / METRICS_FILE).write_text(
        json.dumps(metrics, indent=2, allow_nan=False), encoding="utf-8"
    )
    logger.info("finished in %.1fs", timings["total"])
    return RunResult(out_dir=tmp, config=cfg, metrics=metrics, reports=reports, recommender=rec)


# =========================================================================== run_grid
def flatten_dict(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b.c": value}`` (dotted keys, as overrides and grids use)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten_dict(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def varying_keys(configs: Sequence[ExperimentConfig]) -> list[str]:
    """Dotted keys whose value differs between ``configs`` (the grid dimensions)."""
    flats = [flatten_dict(c.to_dict()) for c in configs]
    keys: list[str] = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    return [
        k
        for k in keys
        if k != "name" and len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1
    ]


def run_grid(
    configs: Sequence[ExperimentConfig],
    out_root: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
) -> list[RunResult]:
    """Run each config into ``out_root/<name>-<index>`` and write ``out_root/summary.csv``.

    ``summary.csv`` has one row per run: ``run`` (directory name), the values of the keys
    that vary between the configs, every metric as ``<part>.<metric>``, ``train_seconds``
    and ``final_loss``. It is rewritten (atomically) after each run, so it is current even
    when a later run fails. ``index`` counts from 0. ``overwrite``/``resume`` apply to each
    run directory (see :func:`run`). The fitted models are not kept in the results.
    """
    configs = list(configs)
    if not configs:
        raise ConfigError("run_grid() got no configs")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    keys = varying_keys(configs)
    results: list[RunResult] = []
    rows: list[dict[str, Any]] = []
    for i, cfg in enumerate(configs):
        run_dir = out_root / f"{cfg.name}-{i}"
        logger.info("grid run %d/%d -> %s", i + 1, len(configs), run_dir)
        res = run(cfg, run_dir, progress=progress, overwrite=overwrite, resume=resume)
        res.recommender = None
        results.append(res)
        flat = flatten_dict(cfg.to_dict())
        row: dict[str, Any] = {"run": run_dir.name}
        for k in keys:
            v = flat.get(k)
            row[k] = json.dumps(v) if isinstance(v, list | dict) else v
        for part, rep in res.reports.items():
            for m, v in rep.metrics.items():
                row[f"{part}.{m}"] = v
        row["train_seconds"] = res.metrics.get("train", {}).get("seconds")
        row["final_loss"] = res.metrics.get("train", {}).get("final_loss")
        rows.append(row)
        _write_summary(out_root / SUMMARY_FILE, rows)
    return results


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in header})
    _write_text_atomic(path, buf.getvalue())


__all__ = [
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "PreprocessConfig",
    "RunExistsError",
    "RunResult",
    "SplitConfig",
    "SyntheticConfig",
    "apply_overrides",
    "apply_preprocess",
    "format_table",
    "grid",
    "load_experiment",
    "load_run",
    "make_split",
    "metrics_table",
    "parse_override",
    "parse_value",
    "prepare_data",
    "read_data",
    "run",
    "run_grid",
    "varying_keys",
]
