"""Data of an experiment: read -> preprocess -> split, and the data a saved run is evaluated on.

:func:`prepare_data` runs the ``[data]``, ``[preprocess]`` and ``[split]`` sections
(:func:`read_data`, :func:`apply_preprocess`, :func:`make_split`). The preprocessing is built
from the steps of :data:`seqrec.preprocess.STEPS` (:func:`preprocess_steps` says which).

For a model saved by a run, :func:`run_split` re-derives the run's split (from its
``config.resolved.toml``) and :func:`evaluation_data` gives the part to evaluate it on, with
the run's evaluation settings, so that a notebook, a server or ``seqrec evaluate`` measure a
saved model on exactly the data its run measured it on::

    from seqrec.recommender import Recommender
    from seqrec.experiment import evaluation_data

    data = evaluation_data("runs/ml100k_gru4rec", "test")
    report = data.evaluate(Recommender.load("runs/ml100k_gru4rec/artifact"))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError
from seqrec.experiment.config import (
    SYNTHETIC,
    SYNTHETIC_BASKETS,
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    PreprocessConfig,
    SplitConfig,
    SyntheticBasketsConfig,
    SyntheticConfig,
    validate_config,
)
from seqrec.experiment.files import RESOLVED_CONFIG
from seqrec.experiment.load import load_experiment
from seqrec.experiment.overrides import apply_overrides, parse_override
from seqrec.preprocess import Preprocessor, build_steps, event_counts
from seqrec.split import Split

logger = logging.getLogger(__name__)


# =============================================================================== read
def read_data(cfg: DataConfig) -> pl.DataFrame:
    """The canonical event frame of a ``[data]`` section."""
    from seqrec.data.readers import (
        read_interactions,
        read_item_lists,
        read_movielens,
        read_session_log,
    )
    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.datasets import load_dataset

    if cfg.dataset == SYNTHETIC:
        s = cfg.synthetic or SyntheticConfig()
        return synthetic_sessions(**s.model_dump())
    if cfg.dataset == SYNTHETIC_BASKETS:
        from seqrec.data.synthetic import synthetic_baskets

        sb = cfg.synthetic_baskets or SyntheticBasketsConfig()
        return synthetic_baskets(**sb.model_dump())
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
    if fmt == "basket-json":
        from seqrec.data.baskets import read_basket_json

        return read_basket_json(path)
    if fmt == "baskets":
        from seqrec.data.baskets import read_basket_log

        return read_basket_log(
            path,
            columns=cfg.columns,
            sep=cfg.sep,
            time_unit=cfg.time_unit,
        )
    if fmt == "item-lists":
        cols = dict(cfg.columns or {})
        bad = sorted(set(cols) - {Columns.session, Columns.item})
        if bad or any(not isinstance(v, str) for v in cols.values()):
            raise ConfigError(
                "data.columns of format 'item-lists' may only name session_id and item_id (the "
                f"column holding the item lists) by their names; got {cfg.columns}"
            )
        return read_item_lists(
            path,
            session_col=cols.get(Columns.session, Columns.session),
            items_col=cols.get(Columns.item, "items"),
            sep=cfg.sep,
        )
    return read_interactions(path, columns=cfg.columns, sep=cfg.sep, time_unit=cfg.time_unit)


# ========================================================================= preprocess
def preprocess_steps(
    cfg: PreprocessConfig, columns: Sequence[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``[preprocess]`` section as step specs of :data:`seqrec.preprocess.STEPS`.

    Parameters
    ----------
    cfg
        The section.
    columns
        The columns of the frame to clean (``sessionize`` groups by ``user_id`` when there
        is one, else it splits the existing sessions).

    Returns
    -------
    (once, filters)
        ``{"step": name, **fields}`` dicts (:func:`seqrec.preprocess.build_steps` builds
        them): the steps applied once, in order (``min_rating``, ``sessionize``,
        ``drop_consecutive_repeats``), then the filters (``min_session_length``,
        ``min_item_support``; a threshold of 1 is left out) repeated to a fixed point when
        ``cfg.until_stable``.
    """
    once: list[dict[str, Any]] = []
    if cfg.min_rating is not None:
        once.append({"step": "min_rating", "threshold": cfg.min_rating})
    if cfg.session_gap_seconds is not None:
        by = Columns.user if Columns.user in columns else Columns.session
        once.append({"step": "sessionize", "gap_seconds": cfg.session_gap_seconds, "by": by})
    if cfg.drop_consecutive_repeats:
        once.append({"step": "drop_consecutive_repeats"})
    filters: list[dict[str, Any]] = []
    if cfg.min_session_length > 1:
        filters.append({"step": "min_session_length", "n": cfg.min_session_length})
    if cfg.min_item_support > 1:
        filters.append({"step": "min_item_support", "n": cfg.min_item_support})
    return once, filters


def apply_preprocess(
    df: pl.DataFrame, cfg: PreprocessConfig
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Apply the ``[preprocess]`` section; returns the frame and what each stage kept.

    The info dict has the counts (events, sessions, items) of the ``input``, after each
    step applied once (``after_<step>``) and of the ``output``; with filters, the number of
    ``filter_rounds`` and whether they ``converged``; and the ``steps`` that ran.

    Raises
    ------
    DataError
        Preprocessing removed every event.
    """
    once, filters = preprocess_steps(cfg, df.columns)
    info: dict[str, Any] = {"input": event_counts(df)}
    for step in build_steps(once):
        df = step(df)
        info[f"after_{step.name}"] = event_counts(df)
    if filters:
        pre = Preprocessor(build_steps(filters), until_stable=cfg.until_stable)
        df = pre(df)
        info["filter_rounds"] = len(pre.history_) - 1
        info["converged"] = pre.converged_
    info["output"] = event_counts(df)
    info["steps"] = [*once, *filters]
    if df.height == 0:
        raise DataError(
            f"preprocessing removed every event ({info}); lower preprocess.min_item_support / "
            "min_session_length or check min_rating"
        )
    return df, info


# ============================================================================== split
def make_split(df: pl.DataFrame, cfg: SplitConfig) -> Split:
    """Split a cleaned frame as the ``[split]`` section says (its ``method``)."""
    from seqrec import split as S

    if cfg.method == "time":
        return S.split_by_time(
            df,
            test_days=cfg.test_days,
            valid_days=cfg.valid_days,
            by=cfg.by,
            at_cutoff=cfg.at_cutoff,
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


def prepare_data(cfg: ExperimentConfig) -> tuple[Split, dict[str, Any]]:
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
        name: event_counts(part)
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


# ===================================================================== saved runs' data
def find_run_config(path: str | Path) -> Path | None:
    """The ``config.resolved.toml`` of a run directory, or of the run holding a model
    directory (its ``artifact/``); None when there is none."""
    p = Path(path).expanduser()
    for cand in (p / RESOLVED_CONFIG, p.parent / RESOLVED_CONFIG):
        if cand.is_file():
            return cand
    return None


def experiment_of(
    source: ExperimentConfig | str | Path, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """The experiment behind ``source``, with ``--set``-style ``overrides`` applied.

    Parameters
    ----------
    source
        An :class:`ExperimentConfig`, an experiment file, a run directory or a model
        directory inside a run (its ``artifact/``): the run's ``config.resolved.toml``.

    Raises
    ------
    ConfigError
        A directory without a ``config.resolved.toml`` (nor in its parent), or a bad file.
    """
    if isinstance(source, ExperimentConfig):
        if not overrides:
            return source
        pairs = [parse_override(o) for o in overrides]
        return validate_config(apply_overrides(source.to_dict(), pairs), "config with overrides")
    p = Path(source).expanduser()
    if p.is_dir():
        found = find_run_config(p)
        if found is None:
            raise ConfigError(
                f"{p} has no {RESOLVED_CONFIG} (nor its parent) saying how its run read, "
                "cleaned and split the data; pass the experiment file or config instead"
            )
        p = found
    return load_experiment(p, overrides)


def with_data(cfg: ExperimentConfig, data: DataConfig) -> ExperimentConfig:
    """``cfg`` with its ``[data]`` section replaced (preprocessing and split kept)."""
    raw = apply_overrides(cfg.to_dict(), [("data", data.model_dump(exclude_none=True))])
    return ExperimentConfig.model_validate(raw)


def run_split(
    source: ExperimentConfig | str | Path,
    *,
    data: DataConfig | None = None,
    overrides: Sequence[str] = (),
) -> Split:
    """The train/valid/test split of a run, re-derived as its config says.

    Parameters
    ----------
    source
        See :func:`experiment_of`: a config, an experiment file, a run directory or the
        model directory inside one.
    data
        Other data to read, preprocess and split the same way (default: the run's own).
    overrides
        ``--set``-style overrides of the experiment.
    """
    cfg = experiment_of(source, overrides)
    if data is not None:
        cfg = with_data(cfg, data)
    split, _ = prepare_data(cfg)
    return split


Part = Literal["valid", "test", "all"]


@dataclass(frozen=True, eq=False)
class EvaluationData:
    """The sessions to evaluate a saved model on, and how (see :func:`evaluation_data`).

    Attributes
    ----------
    frame
        The evaluation sessions (with ``is_target`` for ``valid``/``test``; for ``all``
        every event but the first of a session is a target).
    part
        ``"valid"``, ``"test"`` or ``"all"``.
    split_protocol
        The split's protocol record (``{"method": "none", ...}`` for ``all``).
    eval
        The evaluation settings of the experiment (defaults without one).
    experiment
        The experiment whose data, preprocessing and split were used (None without one).
    data
        The ``[data]`` section read.
    """

    frame: pl.DataFrame
    part: Part
    split_protocol: dict[str, Any]
    eval: EvalConfig = field(default_factory=EvalConfig)
    experiment: ExperimentConfig | None = None
    data: DataConfig | None = None
    chosen_threshold: float | None = None
    """Next-basket runs with ``eval.threshold = "valid"``: the threshold the run chose."""

    def evaluate(
        self,
        recommender: Any,
        *,
        metrics: Sequence[str] | None = None,
        ties: str | None = None,
        exclude_seen: bool | None = None,
        candidates: Literal["full"] | int | None = None,
        progress: bool = False,
    ) -> Any:
        """Evaluate a fitted recommender on :attr:`frame`; an argument left None takes the
        experiment's ``[eval]`` setting. The report's protocol records ``data_split``."""
        from seqrec.experiment.evaluation import evaluate_part

        update: dict[str, Any] = {}
        if ties is not None:
            update["ties"] = ties
        if exclude_seen is not None:
            update["exclude_seen"] = exclude_seen
        if candidates is not None:
            update["candidates"] = candidates
        ev = self.eval.model_copy(update=update)
        threshold = None
        if recommender.spec.task == "next-basket" and ev.threshold == "valid":
            # the threshold the run chose on its validation part, recorded in its metrics
            threshold = self.chosen_threshold
            if threshold is None:
                raise ConfigError(
                    "eval.threshold = 'valid': the run's chosen threshold is not known here; "
                    "pass --set eval.threshold=<value>"
                )
        report = evaluate_part(
            recommender,
            self.frame,
            ev,
            part=self.part,
            threshold=threshold,
            progress=progress,
            metrics=list(metrics) if metrics else None,
        )
        report.protocol["data_split"] = self.split_protocol
        return report


def evaluation_data(
    source: ExperimentConfig | str | Path | None = None,
    part: Part = "test",
    *,
    data: DataConfig | None = None,
    overrides: Sequence[str] = (),
) -> EvaluationData:
    """The data a saved model is evaluated on, as its run did (or on other data).

    Parameters
    ----------
    source
        The experiment (see :func:`experiment_of`): a config, an experiment file, a run
        directory or the model directory inside one. None: only with ``part="all"`` and
        ``data``.
    part
        ``"test"`` / ``"valid"``: the events (of ``data`` when given, else the experiment's
        own) read, preprocessed and split as the experiment says, and that part of the
        split. ``"all"``: the events of ``data`` (default: the experiment's data) as they
        are read, without preprocessing; every event but the first of a session is a
        target.
    data
        Other data instead of the experiment's ``[data]``.
    overrides
        ``--set``-style overrides of the experiment.

    Raises
    ------
    ConfigError
        An unknown part, no experiment for ``valid``/``test``, or no data for ``all``.
    DataError
        The split has no such part.
    """
    if part not in ("valid", "test", "all"):
        raise ConfigError(f"part must be 'valid', 'test' or 'all', got {part!r}")
    if source is None and overrides:
        raise ConfigError("overrides need an experiment (source) to apply to")
    cfg = experiment_of(source, overrides) if source is not None else None
    if cfg is not None and data is not None:
        cfg = with_data(cfg, data)
    data_cfg = cfg.data if cfg is not None else data
    ev = cfg.eval if cfg is not None else EvalConfig()
    if part == "all":
        if data_cfg is None:
            raise ConfigError("part='all' needs data (a DataConfig) or an experiment")
        protocol: dict[str, Any] = {
            "method": "none",
            "targets": "every event but the first of each session",
        }
        return EvaluationData(read_data(data_cfg), part, protocol, ev, cfg, data_cfg)
    if cfg is None:
        raise ConfigError(
            f"part={part!r} needs the experiment saying how to preprocess and split the data "
            "(a config, an experiment file or a run directory); or use part='all'"
        )
    split, _ = prepare_data(cfg)
    frame = split.valid if part == "valid" else split.test
    if frame is None:
        raise DataError(f"the split of {cfg.name!r} has no {part} part")
    return EvaluationData(frame, part, split.protocol, ev, cfg, data_cfg)


__all__ = [
    "EvaluationData",
    "apply_preprocess",
    "evaluation_data",
    "experiment_of",
    "find_run_config",
    "make_split",
    "prepare_data",
    "preprocess_steps",
    "read_data",
    "run_split",
    "with_data",
]
