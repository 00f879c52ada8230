"""The Python mirror of ``seqrec run``: an experiment file in, a polars frame of results out.

:func:`run` does what the command does (one run, a grid, a random, variants or
Optuna search, seeds, ``--set``/``--grid``/``--resume``/``--jobs``) and returns the table
``summary.csv`` holds, one row per run, so that a notebook gets the same thing as a terminal
(:func:`~seqrec.experiment.runs.run_one` is one run of one config, returning its
:class:`~seqrec.experiment.runs.RunResult` with the fitted recommender)::

    from seqrec.experiment import run
    from seqrec.report import build

    df = run("configs/ml100k_notebook_experiments.toml", "runs/exp")
    df.group_by("variant").agg(pl.col("test.recall@20").mean())
    build(["runs/exp"], "reports/exp")
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from seqrec.experiment.config import ExperimentConfig, validate_config
from seqrec.experiment.load import grid, load_experiment
from seqrec.experiment.overrides import apply_overrides, parse_override
from seqrec.experiment.runs import RunResult, _summary_row, run_grid, run_one


def is_search(cfg: ExperimentConfig, space: Mapping[str, Any] | None = None) -> bool:
    """Whether ``cfg`` (with the extra dimensions ``space``) is a search (several runs or a
    search method) rather than one run."""
    s = cfg.search
    many = s is not None and (s.method != "grid" or bool(s.seeds) or bool(s.n_seeds))
    return bool(cfg.grid or space or many)


def results_frame(results: Sequence[RunResult], keys: Sequence[str] = ()) -> pl.DataFrame:
    """One row per run, the columns of ``summary.csv`` (``run``, ``point``, ``seed``,
    ``status``, ``error``, the ``keys`` that vary, ``<part>.<metric>``, ``train_seconds``,
    ``final_loss``) plus ``out_dir``, the run's directory (for :func:`load_run`)."""
    rows = [{**_summary_row(r, keys), "out_dir": str(r.out_dir)} for r in results]
    return pl.from_dicts(rows, infer_schema_length=None)


def option_overrides(max_runs: int | None = None, mlflow: str | Path | None = None) -> list[str]:
    """The ``--set`` strings of the options ``--max-runs`` and ``--mlflow``."""
    sets = []
    if max_runs is not None:
        sets.append(f"search.max_runs={max_runs}")
    if mlflow is not None:
        sets.append(f"tracking.mlflow={json.dumps(str(mlflow))}")
    return sets


def run_search(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    space: Mapping[str, Sequence[Any]] | None = None,
    *,
    progress: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    jobs: int | Literal["auto"] = 1,
    announce: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Run the search of ``cfg`` (an Optuna study, or the grid, random or variants points
    expanded by :func:`~seqrec.experiment.grid`) into ``out_dir``; ``announce`` gets a line
    saying how many runs or trials go where, before they start."""
    if cfg.search is not None and cfg.search.method == "optuna":
        from seqrec.experiment.optuna_search import run_optuna

        if announce is not None:
            announce(f"optuna: {cfg.search.n} trials into {out_dir}/")
        return run_optuna(
            cfg, out_dir, space, progress=progress, overwrite=overwrite, resume=resume, jobs=jobs
        )
    configs = grid(cfg, space)
    if announce is not None:
        announce(f"grid: {len(configs)} runs into {out_dir}/")
    return run_grid(
        configs, out_dir, progress=progress, overwrite=overwrite, resume=resume, jobs=jobs
    )


def run(
    experiment: str | Path | ExperimentConfig,
    out: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    space: Mapping[str, Sequence[Any]] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    jobs: int | Literal["auto"] = 1,
    max_runs: int | None = None,
    mlflow: str | Path | None = None,
    progress: bool = False,
) -> pl.DataFrame:
    """Run an experiment file (or config) as ``seqrec run`` does; return its results.

    Parameters
    ----------
    experiment
        A TOML/YAML experiment file or an :class:`ExperimentConfig`.
    out
        The run directory (one run) or the search's root; default ``runs/<name>``.
    overrides
        ``"key=value"`` settings, as ``--set`` (TOML values: ``"model.layers=[100]"``).
    space
        Extra search dimensions, as ``--grid``: ``{"train.learning_rate": [0.001, 0.005]}``.
    resume, overwrite
        As ``--resume`` / ``--overwrite`` (finished points are reused with ``resume``).
    jobs
        Points at a time in worker processes (``"auto"``: see
        :func:`~seqrec.experiment.runs.auto_jobs`).
    max_runs
        Refuse a search of more runs than this (``search.max_runs``).
    mlflow
        Also log every run to this MLflow store (``--mlflow``; ``[tracking] mlflow``).

    Returns
    -------
    polars.DataFrame
        One row per run (see :func:`results_frame`); the varied keys are columns of a search.
        Failed runs are rows with ``status = "failed"`` and their ``error`` (not raised:
        the search goes on, as the command's).

    Raises
    ------
    ConfigError
        A bad file, override or search space, before anything trains.
    RunExistsError
        ``out`` holds a finished run of another config (without ``overwrite``/``resume``).
    """
    from seqrec.experiment.overrides import varying_keys

    sets = [*overrides, *option_overrides(max_runs, mlflow)]
    if isinstance(experiment, ExperimentConfig):
        pairs = [parse_override(o) for o in sets]
        cfg = validate_config(apply_overrides(experiment.to_dict(), pairs), "overrides")
    else:
        cfg = load_experiment(experiment, sets)
    out_dir = Path(out) if out is not None else Path("runs") / cfg.name
    if not is_search(cfg, space):
        one = cfg.model_copy(update={"search": None})
        res = run_one(one, out_dir, progress=progress, overwrite=overwrite, resume=resume)
        return results_frame([res])
    results = run_search(
        cfg, out_dir, space, progress=progress, overwrite=overwrite, resume=resume, jobs=jobs
    )
    keys = [k for k in varying_keys([r.config for r in results]) if k != "seed"]
    return results_frame(results, keys)


__all__ = ["is_search", "option_overrides", "results_frame", "run", "run_search"]
