"""Optuna search: ``[search] method = "optuna"`` (``pip install 'seqrec[optuna]'``).

The ``[grid]`` table is the search space, as for a random search: a list is a categorical
dimension (``suggest_categorical``; values that are not plain scalars, such as ``[100]``, are
offered as their JSON text), a range ``{low, high, log, integer}`` a float
(``suggest_float(log=)``, rounded to four significant digits as a random search's draws) or
an integer (``suggest_int(log=)``). :func:`run_optuna` runs ``search.n`` trials, each an
ordinary run (or one per seed with ``search.seeds``/``n_seeds``) into
``<out>/<name>-<point id>-s<seed>/`` with ``summary.csv`` and ``points.csv`` beside them, as a
grid writes them (plus a ``trial`` column: the trial that first ran the point). The objective,
maximised, is the validation metric ``search.metric`` (default ``train.valid_metric`` when
``eval.metrics`` has it, else the first of ``eval.metrics``; every seqrec metric is "higher
is better"), averaged over the seeds of the point.

Pruning (``search.pruner = "median"``): after each epoch the first seed's run reports its
validation value (``train.valid_metric``, computed per epoch) to the trial
(:meth:`seqrec.train.Trainer.fit`'s ``on_epoch``); when Optuna's median pruner says so the run
stops (:class:`~seqrec.exceptions.RunPruned`) and is recorded: ``pruned.json`` (the epoch,
the value, the per-epoch values) with its config and log in its directory, status
``"pruned"`` in ``summary.csv``; the study goes on. Models without epochs (kNN, popularity)
just run.

The study lives in ``<out>/optuna.journal`` (Optuna's journal storage: an append-only file,
each record appended and fsynced under a lock, so a SIGKILL loses at most the trial that was
running; a record torn by a kill and a stale lock file are removed on the next start).
``resume=True`` (``seqrec run --resume``) continues the study to ``search.n`` ended trials: a
trial that a kill interrupted is asked again with the same point (its run continues from its
last epoch checkpoint); finished trials are not rerun, and a trial that suggests a point
already run reuses its result (a pruned point stays pruned). The sampler of trial ``k`` is
seeded with ``search.seed + k`` (``k`` trials ended before it), so a resumed study suggests
what an uninterrupted one would (serially). Trials run one at a time (``jobs = 1``): each suggestion depends on the results
before it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from seqrec.exceptions import ConfigError, RunPruned, SeqrecError
from seqrec.experiment.config import ExperimentConfig, RangeSpec, validate_config
from seqrec.experiment.errors import RunExistsError
from seqrec.experiment.files import (
    ERROR_FILE,
    LOG_FILE,
    METRICS_FILE,
    POINTS_FILE,
    RESOLVED_CONFIG,
    SUMMARY_FILE,
    partial_dir,
    write_text_atomic,
)
from seqrec.experiment.load import load_experiment
from seqrec.experiment.overrides import apply_overrides, varying_keys
from seqrec.experiment.runs import (
    RunResult,
    _record_failure,
    _summary_row,
    _write_summary,
    load_run,
    point_rows,
    run_one,
)
from seqrec.experiment.search import _check_space, flatten_space, point_id, run_name

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

OPTUNA_EXTRA = "pip install 'seqrec[optuna]'"
"""The install command named by the error when Optuna is missing."""

STUDY_FILE = "optuna.journal"
"""The study's journal in the output directory."""

LOCK_FILE = ".optuna.lock"
"""Held (flock) by the process running the study."""

PRUNED_FILE = "pruned.json"
"""The record of a pruned run in its directory."""

_JSON_PREFIX = "json:"


def require_optuna() -> Any:
    """Import Optuna, or raise a :class:`ConfigError` naming the extra to install."""
    try:
        import optuna
    except ImportError as e:
        raise ConfigError(
            f"[search] method = 'optuna' needs Optuna, which is not installed ({e}): {OPTUNA_EXTRA}"
        ) from None
    return optuna


# ------------------------------------------------------------------------ the space
def dimensions(space: Mapping[str, Any]) -> dict[str, list[Any] | RangeSpec]:
    """The ``[grid]`` table as checked dimensions (lists and :class:`RangeSpec` ranges)."""
    dims = {
        k: RangeSpec.model_validate(v) if isinstance(v, Mapping) else v for k, v in space.items()
    }
    _check_space(dims)
    if not dims:
        raise ConfigError(
            "empty search space: [search] method = 'optuna' draws from the [grid] table; "
            'give it dimensions, e.g. [grid] "train.learning_rate" = '
            "{low = 1e-4, high = 1e-1, log = true}"
        )
    for k, d in dims.items():
        if isinstance(d, RangeSpec) and d.integer and math.ceil(d.low) > math.floor(d.high):
            raise ConfigError(f"grid key {k!r}: the integer range {d} holds no integer")
    return dims


def _plain(values: list[Any]) -> bool:
    return all(v is None or isinstance(v, bool | int | float | str) for v in values)


def _choices(values: list[Any]) -> list[Any]:
    if _plain(values) and not any(
        isinstance(v, str) and v.startswith(_JSON_PREFIX) for v in values
    ):
        return list(values)
    return [_JSON_PREFIX + json.dumps(v, sort_keys=True) for v in values]


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_JSON_PREFIX):
        return json.loads(value[len(_JSON_PREFIX) :])
    return value


def suggest(trial: Any, dims: Mapping[str, list[Any] | RangeSpec]) -> dict[str, Any]:
    """The point of ``trial``: one ``suggest_*`` call per dimension, in order."""
    point: dict[str, Any] = {}
    for k, d in dims.items():
        if isinstance(d, RangeSpec):
            if d.integer:
                lo, hi = math.ceil(d.low), math.floor(d.high)
                point[k] = int(trial.suggest_int(k, lo, hi, log=d.log and lo > 0))
            else:
                x = float(trial.suggest_float(k, d.low, d.high, log=d.log))
                point[k] = min(max(float(f"{x:.4g}"), d.low), d.high)
        else:
            point[k] = _decode(trial.suggest_categorical(k, _choices(list(d))))
    return point


def _check_points(base: Mapping[str, Any], dims: Mapping[str, list[Any] | RangeSpec]) -> None:
    """Validate every listed value and both ends of every range (each with the other
    dimensions at their first value / low end) before anything trains."""

    def first(d: list[Any] | RangeSpec) -> Any:
        if isinstance(d, RangeSpec):
            return math.ceil(d.low) if d.integer else d.low
        return d[0]

    start = {k: first(d) for k, d in dims.items()}
    for k, d in dims.items():
        if isinstance(d, RangeSpec):
            values = [start[k], math.floor(d.high) if d.integer else d.high]
        else:
            values = list(d)
        for v in values:
            point = {**start, k: v}
            validate_config(apply_overrides(base, point.items()), f"search point {point}")


# ------------------------------------------------------------------- the study
def _sampler(optuna: Any, search: Any, number: int) -> Any:
    seed = search.seed + number  # per trial: a resumed study suggests as an uninterrupted one
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=search.startup_trials)


def _pruner(optuna: Any, search: Any) -> Any:
    if search.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=search.pruner_startup_trials,
        n_warmup_steps=search.pruner_warmup_epochs + 1,  # steps are epochs, from 1
    )


def _search_signature(cfg: ExperimentConfig, dims: Mapping[str, Any], metric: str) -> dict:
    """What a resumed study must share with the one it continues (not ``n``)."""
    search = cfg.search
    assert search is not None
    base = cfg.model_copy(update={"grid": {}, "search": None, "tracking": None})
    return json.loads(
        json.dumps(
            {
                "base_point": point_id(base),
                "space": {
                    k: d.model_dump() if isinstance(d, RangeSpec) else d for k, d in dims.items()
                },
                "metric": metric,
                "sampler": search.sampler,
                "pruner": search.pruner,
                "seed": search.seed,
                "seeds": search.seed_list(cfg.seed),
                "startup_trials": search.startup_trials,
                "pruner_startup_trials": search.pruner_startup_trials,
                "pruner_warmup_epochs": search.pruner_warmup_epochs,
            },
            default=str,
        )
    )


@contextlib.contextmanager
def _study_lock(out_root: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(out_root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunExistsError(
                f"another process is running the Optuna study in {out_root}; wait for it or "
                "choose another output directory"
            ) from None
        yield
    finally:
        os.close(fd)


def _repair_journal(journal: Path) -> None:
    """After a kill (this process holds the study's lock, so no one else writes): remove a
    stale lock file of the journal and a record torn at its end (written whole or not at
    all: a torn one never took effect), so that appending goes on."""
    Path(f"{journal}.lock").unlink(missing_ok=True)
    if not journal.is_file() or journal.stat().st_size == 0:
        return
    with journal.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    logger.warning(
        "removed a record torn by a kill at the end of %s (%d bytes)", journal, len(data) - keep
    )


def _ended(t: Any, TrialState: Any) -> bool:
    """Whether trial ``t`` counts towards the budget (not one a kill interrupted)."""
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")


# ------------------------------------------------------------------- one run
def _pruned_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads((run_dir / PRUNED_FILE).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and not (run_dir / METRICS_FILE).is_file() else None


def _record_pruned(
    run_dir: Path, cfg: ExperimentConfig, e: RunPruned, metric: str, values: list[list[float]]
) -> None:
    from seqrec import __version__

    partial = partial_dir(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    if (partial / LOG_FILE).is_file():
        shutil.copyfile(partial / LOG_FILE, run_dir / LOG_FILE)
    shutil.rmtree(partial, ignore_errors=True)  # a pruned run is not resumed
    write_text_atomic(run_dir / RESOLVED_CONFIG, cfg.to_toml())
    record = {
        "pruned_after_epoch": e.epoch,
        "metric": metric,
        "value": e.value,
        "intermediate_values": values,
        "message": str(e),
        "pruned": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seqrec_version": __version__,
    }
    write_text_atomic(run_dir / PRUNED_FILE, json.dumps(record, indent=2))


def _load_result(cfg: ExperimentConfig, run_dir: Path) -> RunResult | None:
    """The recorded result of a run of this study (finished, pruned or failed)."""
    if (run_dir / METRICS_FILE).is_file():
        return load_run(run_dir)
    if _pruned_record(run_dir) is not None:
        return RunResult(out_dir=run_dir, config=cfg, metrics={}, status="pruned")
    try:
        err = json.loads((run_dir / ERROR_FILE).read_text())
    except (OSError, ValueError):
        return None
    text = f"{err.get('error')}: {err.get('message')}" if err.get("message") else err.get("error")
    return RunResult(out_dir=run_dir, config=cfg, metrics={}, status="failed", error=text)


def _run_trial_run(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    trial: Any,
    metric: str,
    prune: bool,
    reuse: bool,
    progress: bool,
    overwrite: bool,
    resume: bool,
) -> RunResult:
    """One run of a trial; a pruned run is recorded, an exception recorded as a failure."""
    plain = cfg.model_copy(update={"tracking": None})  # what run_one() returns and records
    pruned = _pruned_record(run_dir)
    if pruned is not None and reuse:  # the same point was pruned before: it stays pruned
        if prune:
            for step, v in pruned.get("intermediate_values", []):
                trial.report(float(v), int(step))
        logger.info("trial %d: %s was pruned before; not run again", trial.number, run_dir)
        return RunResult(out_dir=run_dir, config=plain, metrics={}, status="pruned")
    if pruned is not None or (
        (run_dir / ERROR_FILE).is_file() and not (run_dir / METRICS_FILE).is_file()
    ):
        shutil.rmtree(run_dir)  # a failed point runs again (as in a grid)
    values: list[list[float]] = []

    def on_epoch(log: Any) -> None:
        v = log.valid.get(metric)
        if v is None or not math.isfinite(float(v)):
            return
        trial.report(float(v), log.epoch)
        values.append([log.epoch, float(v)])
        if trial.should_prune():
            raise RunPruned(
                f"trial {trial.number} pruned after epoch {log.epoch}: valid {metric} "
                f"{float(v):.4f} is below the median of the earlier trials at that epoch",
                epoch=log.epoch,
                value=float(v),
            )

    try:
        res = run_one(
            cfg,
            run_dir,
            progress=progress,
            overwrite=overwrite and not reuse,
            resume=resume or reuse,
            on_epoch=on_epoch if prune else None,
        )
    except RunExistsError:
        raise
    except RunPruned as e:
        _record_pruned(run_dir, plain, e, metric, values)
        logger.info("%s", e)
        res = RunResult(out_dir=run_dir, config=plain, metrics={}, status="pruned")
    except Exception as e:
        text = _record_failure(run_dir, plain, e)
        logger.error("trial %d: %s failed (%s); the study goes on", trial.number, run_dir, text)
        res = RunResult(out_dir=run_dir, config=plain, metrics={}, status="failed", error=text)
    res.recommender = None
    return res


def _objective(res: RunResult, metric: str) -> float | None:
    rep = res.reports.get("valid")
    v = None if rep is None else rep.metrics.get(metric)
    return None if v is None or not math.isfinite(float(v)) else float(v)


# ------------------------------------------------------------------- the driver
def run_optuna(
    cfg: ExperimentConfig,
    out_root: str | Path,
    space: Mapping[str, Any] | None = None,
    *,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    jobs: int | Literal["auto"] = 1,
) -> list[RunResult]:
    """Run the Optuna search of ``cfg`` (``[search] method = "optuna"``) into ``out_root``.

    Parameters
    ----------
    cfg
        An experiment with a ``[grid]`` search space and ``[search] method = "optuna"``.
    space
        Extra dimensions (``--grid``), replacing the file's keys of the same names.
    overwrite
        Start the study in ``out_root`` over (its runs are run again, replacing theirs).
    resume
        Continue the study in ``out_root`` to ``search.n`` ended trials (see the module).
    jobs
        1 (or ``"auto"``): trials run one at a time; more is an error.

    Returns
    -------
    list of RunResult
        One per run of the study, in the order the trials first ran them (``status``
        ``"new"``, ``"resumed"``, ``"finished"`` (reused), ``"failed"`` or ``"pruned"``).

    Raises
    ------
    ConfigError
        Optuna is missing; ``jobs > 1``; an empty space; a value or range end that does not
        validate; more runs than ``search.max_runs``; a resumed study started with another
        search (the differing settings are named).
    RunExistsError
        ``out_root`` holds a study and neither ``resume`` nor ``overwrite`` was given; or
        another process runs it.
    """
    search = cfg.search
    if search is None or search.method != "optuna":
        raise ConfigError("run_optuna() needs [search] method = 'optuna'")
    if jobs == "auto":
        jobs = 1
    if jobs != 1:
        raise ConfigError(
            f"[search] method = 'optuna' runs its trials one at a time (each suggestion depends "
            f"on the results before it), got jobs = {jobs}: use --jobs 1; every torch thread "
            "goes to the one run"
        )
    optuna = require_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
    from optuna.trial import TrialState

    dims = dimensions({**cfg.grid, **flatten_space(dict(space or {}))})
    base = cfg.without_search()
    _check_points(base, dims)
    metric = search.objective_metric(cfg.train, cfg.eval.metrics)
    assert search.n is not None
    seeds = search.seed_list(cfg.seed)
    if search.max_runs is not None and search.n * len(seeds) > search.max_runs:
        raise ConfigError(
            f"the search is {search.n} trial(s) x {len(seeds)} seed(s) = {search.n * len(seeds)} "
            f"runs at most, more than search.max_runs = {search.max_runs}; lower search.n or "
            "raise search.max_runs"
        )
    if cfg.tracking is not None:
        from seqrec.experiment.tracking import prepare_tracking

        prepare_tracking([cfg])
    signature = _search_signature(cfg, dims, metric)
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    journal = out_root / STUDY_FILE
    with _study_lock(out_root):
        _repair_journal(journal)
        if journal.exists() and journal.stat().st_size > 0:
            if overwrite:
                logger.warning("overwrite: starting the Optuna study in %s over", out_root)
                journal.unlink()
            elif not resume:
                raise RunExistsError(
                    f"{out_root} holds an Optuna study ({journal}); pass resume=True "
                    "(seqrec run --resume) to continue it to search.n trials, overwrite=True "
                    "(--overwrite) to start it over, or choose another output directory"
                )
        path = str(journal)
        storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
        names = optuna.get_all_study_names(storage)
        if names and cfg.name not in names:
            raise ConfigError(
                f"{journal} holds the study {names[0]!r}, not {cfg.name!r} (the experiment's "
                "name); use overwrite (--overwrite) to start over or another output directory"
            )
        study = optuna.create_study(
            study_name=cfg.name,
            storage=storage,
            direction="maximize",
            sampler=_sampler(optuna, search, 0),
            pruner=_pruner(optuna, search),
            load_if_exists=True,
        )
        saved = study.user_attrs.get("search")
        if saved is None:
            study.set_user_attr("search", signature)
        elif saved != signature:
            diff = sorted(
                k for k in signature.keys() | saved.keys() if saved.get(k) != signature.get(k)
            )
            raise ConfigError(
                f"cannot resume the Optuna study in {out_root}: it was started with another "
                f"search (differing: {', '.join(diff)}); run with overwrite (--overwrite) to "
                "start it over, or resume with the old settings (search.n may grow)"
            )
        return _optimise(
            optuna,
            TrialState,
            study,
            storage,
            cfg,
            base,
            dims,
            metric,
            seeds,
            out_root,
            progress=progress,
            overwrite=overwrite,
            resume=resume,
        )


def _optimise(
    optuna: Any,
    TrialState: Any,
    study: Any,
    storage: Any,
    cfg: ExperimentConfig,
    base: dict[str, Any],
    dims: Mapping[str, Any],
    metric: str,
    seeds: list[int],
    out_root: Path,
    *,
    progress: bool,
    overwrite: bool,
    resume: bool,
) -> list[RunResult]:
    search = cfg.search
    assert search is not None and search.n is not None
    prune = search.pruner != "none"
    results: dict[str, RunResult] = {}  # run name -> result, in first-run order
    first_trial: dict[str, int] = {}

    def write_tables() -> None:
        done = list(results.values())
        keys = [k for k in varying_keys([r.config for r in done]) if k != "seed"]
        rows = [{"trial": first_trial[r.out_dir.name], **_summary_row(r, keys)} for r in done]
        _write_summary(out_root / SUMMARY_FILE, rows)
        _write_summary(out_root / POINTS_FILE, point_rows(rows, keys))

    def point_configs(point: Mapping[str, Any], number: int) -> list[ExperimentConfig]:
        first = validate_config(
            apply_overrides(base, point.items()), f"optuna trial {number}, point {dict(point)}"
        )
        return [first.model_copy(update={"seed": s}) if s != first.seed else first for s in seeds]

    # what earlier sessions of the study did; trials a kill interrupted are asked again
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING:
            tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            storage.set_trial_user_attr(tid, "interrupted", True)
            storage.set_trial_state_values(tid, TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            logger.info("trial %d was interrupted: asking its point again", t.number)
            continue
        if not _ended(t, TrialState):
            continue
        for name in t.user_attrs.get("runs", []):
            run_dir = out_root / name
            if name in results or not (run_dir / RESOLVED_CONFIG).is_file():
                continue
            try:
                res = _load_result(load_experiment(run_dir / RESOLVED_CONFIG), run_dir)
            except SeqrecError as e:
                logger.warning("trial %d: cannot read %s back (%s)", t.number, run_dir, e)
                continue
            if res is not None:
                results[name] = res
                first_trial[name] = t.number
    if results:
        write_tables()

    def ended() -> int:
        return sum(_ended(t, TrialState) for t in study.get_trials(deepcopy=False))

    while (count := ended()) < search.n:
        # seeded by the count of ended trials: a resumed study suggests the points of an
        # uninterrupted one (an interrupted trial is asked again first, with its point)
        study.sampler = _sampler(optuna, search, count)
        trial = study.ask()
        point = suggest(trial, dims)
        try:
            configs = point_configs(point, trial.number)
        except ConfigError as e:
            logger.error("trial %d: the point %s does not validate: %s", trial.number, point, e)
            trial.set_user_attr("error", str(e))
            study.tell(trial, state=TrialState.FAIL)
            continue
        names = [run_name(c) for c in configs]
        trial.set_user_attr("point", point_id(configs[0]))
        trial.set_user_attr("values", point)  # as run (floats rounded), for best_trial()
        trial.set_user_attr("runs", names)
        logger.info(
            "optuna trial %d (%d/%d): %s -> %s",
            trial.number,
            count + 1,
            search.n,
            point,
            ", ".join(str(out_root / n) for n in names),
        )
        values: list[float] = []
        state = TrialState.COMPLETE
        for j, (c, name) in enumerate(zip(configs, names, strict=True)):
            reuse = name in results and results[name].status != "failed"
            res = _run_trial_run(
                c,
                out_root / name,
                trial=trial,
                metric=metric,
                prune=prune and j == 0,
                reuse=reuse,
                progress=progress,
                overwrite=overwrite,
                resume=resume,
            )
            if not reuse:
                results[name] = res
                first_trial[name] = trial.number
                write_tables()
            elif res.status in ("new", "resumed"):
                res.status = "finished"
            if res.status == "pruned":
                state = TrialState.PRUNED
                break
            v = _objective(res, metric)
            if v is not None:
                values.append(v)
            elif res.status != "failed":
                logger.error(
                    "trial %d: %s has no valid %s (no validation part?); it does not count",
                    trial.number,
                    name,
                    metric,
                )
        if state == TrialState.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        elif values:
            study.tell(trial, sum(values) / len(values))
        else:
            study.tell(trial, state=TrialState.FAIL)
    try:
        best = study.best_trial
        logger.info(
            "optuna: best trial %d, valid %s %.4f, point %s",
            best.number,
            metric,
            best.value,
            best.user_attrs.get("point"),
        )
    except ValueError:
        logger.warning("optuna: no trial finished (all pruned or failed)")
    return list(results.values())


def best_trial(out_root: str | Path, name: str) -> dict[str, Any] | None:
    """The best trial of the study of experiment ``name`` in ``out_root``: ``number``,
    ``value``, ``point``, ``runs``, ``params`` (None when no trial completed)."""
    optuna = require_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(Path(out_root) / STUDY_FILE)
    storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    study = optuna.load_study(study_name=name, storage=storage)
    try:
        t = study.best_trial
    except ValueError:
        return None
    return {
        "number": t.number,
        "value": t.value,
        "point": t.user_attrs.get("point"),
        "runs": t.user_attrs.get("runs", []),
        "params": t.user_attrs.get("values") or {k: _decode(v) for k, v in t.params.items()},
    }


__all__ = [
    "OPTUNA_EXTRA",
    "PRUNED_FILE",
    "STUDY_FILE",
    "best_trial",
    "dimensions",
    "require_optuna",
    "run_optuna",
    "suggest",
]
