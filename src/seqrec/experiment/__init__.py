"""Experiments: one typed config file -> one run directory.

An experiment file (TOML or YAML) has the sections ``[data]``, ``[preprocess]``, ``[split]``,
``[model]``, ``[objective]``, ``[train]``, ``[eval]`` plus the top-level keys ``name`` and
``seed``, and optionally a ``[grid]`` table (the search space) and a ``[search]`` section
(grid or random search, seeds per point, a maximum number of runs). Each section maps onto one frozen pydantic model
(unknown keys are errors). Two sections are discriminated unions: ``model.name`` selects the
model from the explicit registry :data:`seqrec.models.MODELS` and the other ``[model]`` keys
validate against that model's config class (no ``name`` means ``"gru4rec"``);
``split.method`` selects the splitter of :mod:`seqrec.split` and its keys (:data:`SPLITS`;
no ``method`` means ``"time"``). A key of another model or method is an error saying so.

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

    [search]                     # optional: method = "grid" (default), "random" (n = budget),
                                 # "variants" (named points) or "optuna" (n trials)
    seeds = [0, 1, 2]            # every point with each seed; tables show mean ± std, 95% CI
    max_runs = 100               # a larger search is a ConfigError before anything runs

:func:`run_one` reads, cleans and splits the data (:func:`prepare_data`), trains a
:class:`~seqrec.recommender.Recommender`, evaluates it and writes a run directory::

    runs/<name>/
      config.resolved.toml   every setting, defaults included (reload with load_experiment)
      metrics.json           valid/test reports with their protocol, training history,
                             data statistics, timings
      log.txt                the log of the run
      artifact/              the saved model (Recommender.load)

A grid or search runs each point and seed into ``<out>/<name>-<point id>-s<seed>/`` (the
point id is a hash of the point's resolved config, so a grown or shrunk grid keeps its
finished points), with ``summary.csv`` (one row per run) and ``points.csv`` (one row per
point: mean, std and 95% interval over the seeds) beside them; a failed point holds
``error.json`` and the grid goes on (see :func:`run_grid`).

A run lives in ``runs/.<name>.partial/`` until it finishes (config first, the log, and
the Trainer's ``checkpoint/`` after every epoch); then ``metrics.json`` is written, the
checkpoint removed and the directory renamed to ``runs/<name>/``, so a failed or
interrupted run never leaves a half-written run (or model) behind, and ``run_one(...,
resume=True)`` / ``seqrec run FILE --resume`` continues a killed one from its last epoch
(refusing a changed config, with the differing keys).
:func:`evaluation_data` (and :func:`run_split`) re-derive a finished run's data to evaluate
its saved model on the same split again.

The modules, one job each:

* :mod:`~seqrec.experiment.config` — the sections, :class:`ExperimentConfig`, validation;
* :mod:`~seqrec.experiment.errors` — :class:`RunExistsError`, the friendly config errors;
* :mod:`~seqrec.experiment.overrides` — ``--set`` parsing, :func:`apply_overrides`, grid points;
* :mod:`~seqrec.experiment.load` — :func:`load_experiment`, :func:`grid`;
* :mod:`~seqrec.experiment.search` — grid and random points, seeds, :func:`point_id`,
  :func:`seed_stats`;
* :mod:`~seqrec.experiment.files` — reading TOML/YAML, compact TOML, atomic writes, file names;
* :mod:`~seqrec.experiment.prepare` — read -> preprocess -> split, a saved run's evaluation data;
* :mod:`~seqrec.experiment.api` — :func:`run`, the Python ``seqrec run`` (a file in, a polars
  frame of results out), :func:`is_search`, :func:`results_frame`;
* :mod:`~seqrec.experiment.runs` — :func:`run_one`, :func:`run_grid`, :class:`RunResult`,
  :func:`load_run`;
* :mod:`~seqrec.experiment.optuna_search` — :func:`run_optuna` (``[search] method =
  "optuna"``, the optional ``optuna`` extra);
* :mod:`~seqrec.experiment.tracking` — logging runs to MLflow (``[tracking]``, the optional
  ``mlflow`` extra);
* :mod:`~seqrec.experiment.tables` — :func:`format_table`, :func:`metrics_table`.

Choices (documented deviations from "anything goes"):

* ``seed`` is an integer (default 0): runs are reproducible; TOML has no null.
* Relative ``data.path`` / ``data.data_dir`` resolve from the current directory.
* The model is trained on the ``train`` part only; ``valid`` is used for per-epoch
  validation (and early stopping with ``train.patience``) and both parts are evaluated.
* Only :func:`run` seeds the global RNGs (``random``, NumPy, torch) — library code never does.
"""

from __future__ import annotations

from seqrec.experiment.api import is_search, results_frame, run
from seqrec.experiment.config import (
    SPLITS,
    SYNTHETIC,
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    LeaveOneOutConfig,
    PreprocessConfig,
    PresplitConfig,
    RangeSpec,
    RatioSplitConfig,
    SearchConfig,
    SplitConfig,
    SyntheticConfig,
    TimeSplitConfig,
    TrackingConfig,
    model_takes_objective,
    validate_config,
)
from seqrec.experiment.errors import RunExistsError
from seqrec.experiment.files import (
    ARTIFACT_DIR,
    ERROR_FILE,
    LOG_FILE,
    METRICS_FILE,
    POINTS_FILE,
    RESOLVED_CONFIG,
    SUMMARY_FILE,
)
from seqrec.experiment.load import grid, load_experiment
from seqrec.experiment.optuna_search import run_optuna
from seqrec.experiment.overrides import (
    apply_overrides,
    flatten_dict,
    parse_override,
    parse_value,
    varying_keys,
)
from seqrec.experiment.prepare import (
    EvaluationData,
    apply_preprocess,
    evaluation_data,
    experiment_of,
    find_run_config,
    make_split,
    prepare_data,
    preprocess_steps,
    read_data,
    run_split,
)
from seqrec.experiment.runs import MAX_AUTO_JOBS, RunResult, auto_jobs, load_run, run_grid, run_one
from seqrec.experiment.search import expand, format_stats, point_id, run_name, seed_stats
from seqrec.experiment.tables import format_table, metrics_table

__all__ = [
    "ARTIFACT_DIR",
    "ERROR_FILE",
    "LOG_FILE",
    "METRICS_FILE",
    "POINTS_FILE",
    "RESOLVED_CONFIG",
    "SPLITS",
    "SUMMARY_FILE",
    "SYNTHETIC",
    "DataConfig",
    "EvalConfig",
    "EvaluationData",
    "ExperimentConfig",
    "LeaveOneOutConfig",
    "PreprocessConfig",
    "PresplitConfig",
    "RangeSpec",
    "RatioSplitConfig",
    "RunExistsError",
    "RunResult",
    "SearchConfig",
    "SplitConfig",
    "SyntheticConfig",
    "TimeSplitConfig",
    "TrackingConfig",
    "apply_overrides",
    "apply_preprocess",
    "evaluation_data",
    "expand",
    "experiment_of",
    "find_run_config",
    "flatten_dict",
    "format_stats",
    "format_table",
    "grid",
    "load_experiment",
    "load_run",
    "make_split",
    "metrics_table",
    "model_takes_objective",
    "parse_override",
    "parse_value",
    "point_id",
    "prepare_data",
    "preprocess_steps",
    "read_data",
    "run",
    "run_one",
    "is_search",
    "results_frame",
    "auto_jobs",
    "MAX_AUTO_JOBS",
    "run_grid",
    "run_optuna",
    "run_name",
    "run_split",
    "seed_stats",
    "validate_config",
    "varying_keys",
]
