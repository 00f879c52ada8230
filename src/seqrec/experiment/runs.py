"""Runs: one experiment config -> one run directory; grids of runs with a summary.

:func:`run_one` writes ``config.resolved.toml``, ``metrics.json``, ``log.txt`` and ``artifact/``
into the stable hidden sibling ``.<name>.partial/`` (:func:`~seqrec.experiment.files.partial_dir`)
and renames it into place at the end; while training, the
:class:`~seqrec.train.Trainer` keeps ``.<name>.partial/checkpoint/`` current after every
epoch, so a killed run can be continued (``run_one(..., resume=True)``, ``seqrec run --resume``)
to exactly the result of an uninterrupted one. Layout while a run is unfinished::

    runs/
      .<name>.partial/          locked (flock) by the process writing it
        config.resolved.toml    the config it runs (a resume must give the same one)
        log.txt                 the log of every attempt
        checkpoint/             state.json + tensors.safetensors after the last full epoch
      <name>/                   only once finished: config, metrics.json, log.txt, artifact/,
                                queries/<part>.parquet (per-query values, for paired tests)

Rules (see :func:`run_one`): a finished run is never touched without ``overwrite``; without
``resume`` an unfinished run is discarded and started over (a warning says so); a failed
run (any exception, Ctrl-C, SIGTERM in ``seqrec run``) keeps its partial directory only if
that holds a checkpoint (or a finished run not yet renamed), tidied to the files above;
temporaries of earlier killed runs are removed when a run of the same name starts.
:func:`run_grid` runs several configs and keeps ``summary.csv`` current after each.
:func:`load_run` reads a finished run back. Only :func:`run_one` seeds the global RNGs
(``random``, NumPy, torch); library code never does.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from seqrec._io import apply_umask, remove_dead_temporaries, replace_dir
from seqrec.evaluate import EvalReport
from seqrec.exceptions import ConfigError, DataError, RunPruned, SeqrecError
from seqrec.experiment.config import ExperimentConfig
from seqrec.experiment.errors import RunExistsError
from seqrec.experiment.evaluation import choose_threshold, evaluate_part
from seqrec.experiment.files import (
    ARTIFACT_DIR,
    ERROR_FILE,
    LOG_FILE,
    METRICS_FILE,
    PARTIAL_SUFFIX,
    POINTS_FILE,
    QUERIES_DIR,
    RESOLVED_CONFIG,
    SUMMARY_FILE,
    json_safe,
    partial_dir,
    remove_path,
    remove_stale,
    write_parquet_atomic,
    write_text_atomic,
)
from seqrec.experiment.load import load_experiment
from seqrec.experiment.overrides import flatten_dict, varying_keys
from seqrec.experiment.prepare import prepare_data
from seqrec.experiment.tables import metrics_table
from seqrec.recommender import Recommender
from seqrec.train import CHECKPOINT_DIR, EpochLog

try:  # POSIX: lock the partial directory of a run against a second writer
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

RunStatus = Literal["new", "resumed", "finished", "failed", "pruned"]


@dataclass
class RunResult:
    """What :func:`run_one` produced.

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
        The fitted model (None for a run that was already finished, or in :func:`run_grid`
        results).
    status
        ``"new"``: ran from the start; ``"resumed"``: continued an unfinished run;
        ``"finished"``: was already finished with the same config and not run again;
        ``"failed"``: a grid point that raised (``error`` says what; only from
        :func:`run_grid`); ``"pruned"``: a trial an Optuna search stopped early (only
        from :func:`~seqrec.experiment.run_optuna`).
    error
        ``"Type: message"`` of a failed grid point, else None.
    """

    out_dir: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    reports: dict[str, EvalReport] = field(default_factory=dict)
    recommender: Recommender | None = None
    status: RunStatus = "new"
    error: str | None = None

    def table(self) -> str:
        """Metrics per part as a readable table (rows: metrics, columns: parts)."""
        return metrics_table(self.reports)


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
    return RunResult(
        out_dir=run_dir, config=cfg, metrics=metrics, reports=reports, status="finished"
    )


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - run_one() seeds globals on purpose
    torch.manual_seed(seed)


def _diff_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    fa, fb = flatten_dict(a), flatten_dict(b)
    missing = object()
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, missing) != fb.get(k, missing))


def _keys_text(keys: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _checkpoint_state(partial: Path) -> dict[str, Any] | None:
    """The JSON part of the checkpoint in ``partial`` (None when there is none)."""
    try:
        state = json.loads((partial / CHECKPOINT_DIR / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _is_complete(partial: Path) -> bool:
    """Whether ``partial`` holds a finished run not yet renamed (metrics.json is written last)."""
    return (partial / METRICS_FILE).is_file() and (partial / ARTIFACT_DIR).is_dir()


def _resumable(partial: Path) -> bool:
    return (partial / RESOLVED_CONFIG).is_file() and (
        _is_complete(partial) or _checkpoint_state(partial) is not None
    )


def _tidy_partial(partial: Path) -> None:
    """Leave in ``partial`` only what a resume uses: the config, the log, the checkpoint
    (and a finished run's metrics.json and artifact/).

    Removes the temporaries of killed writers (``.checkpoint.*``, ``.artifact.*``,
    ``.metrics.json.tmp-*``, a half-saved artifact); a checkpoint that a kill left renamed
    aside (``.checkpoint.old-<pid>``, between the two renames of an atomic replace) is put
    back first.
    """
    ckpt = partial / CHECKPOINT_DIR
    if _checkpoint_state(partial) is None:
        aside = sorted(
            (p for p in partial.glob(f".{CHECKPOINT_DIR}.old-*") if (p / "state.json").is_file()),
            key=lambda p: p.stat().st_mtime,
        )
        if aside:
            remove_path(ckpt)
            os.replace(aside[-1], ckpt)
            logger.info("restored the checkpoint %s from %s", ckpt, aside[-1].name)
    keep = {RESOLVED_CONFIG, LOG_FILE, CHECKPOINT_DIR}
    if _is_complete(partial):
        keep |= {METRICS_FILE, ARTIFACT_DIR, QUERIES_DIR}
    for p in partial.iterdir():
        if p.name not in keep:
            remove_path(p)


def _clear_partial(partial: Path) -> None:
    """Start over: empty ``partial`` (saying so when it held an unfinished run)."""
    entries = list(partial.iterdir())
    if not entries:
        return
    state = _checkpoint_state(partial)
    if state is not None or _is_complete(partial):
        what = "a finished run" if state is None else f"checkpoint after epoch {state['epoch']}"
        logger.warning(
            "starting over: discarding the unfinished run in %s (%s); pass resume=True "
            "(seqrec run --resume) to continue such a run instead",
            partial,
            what,
        )
    else:
        logger.info("removing the leftovers of an unfinished run in %s", partial)
    for p in entries:
        remove_path(p)


def _check_resume_config(partial: Path, cfg: ExperimentConfig, out_dir: Path) -> None:
    """Refuse to resume ``partial`` with a config other than the one it was started with."""
    saved_file = partial / RESOLVED_CONFIG
    if not saved_file.is_file():
        return
    try:
        saved = load_experiment(saved_file)
    except SeqrecError as e:
        raise ConfigError(
            f"cannot resume {out_dir}: the config of the unfinished run ({saved_file}) is "
            f"unreadable ({e}); run without --resume (resume=False) to start over"
        ) from None
    diff = _diff_keys(saved.to_dict(), cfg.to_dict())
    if diff:
        raise ConfigError(
            f"cannot resume {out_dir}: the config changed since the unfinished run in "
            f"{partial} started (differing keys: {_keys_text(diff)}); run without --resume "
            "(resume=False) to start over with the new config, or resume with the old one"
        )


@contextlib.contextmanager
def _locked(partial: Path, out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``partial`` (a second process writing the same run fails).

    Another run starting in the same folder (a ``--jobs`` worker) briefly locks ``partial``
    to see whether it is dead debris (:func:`_remove_dead_partials`) and may remove it while
    it is still empty: a lock held for up to :data:`LOCK_WAIT` seconds is waited for, and a
    ``partial`` removed meanwhile is made again (the lock is only taken on the directory the
    path names)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        partial.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(partial, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                raise RunExistsError(
                    f"another process is writing the run {out_dir} (its directory {partial} "
                    "is locked); wait for it to finish or choose another output directory"
                ) from None
            time.sleep(0.02)
            continue
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(partial))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # removed (and perhaps made again) while we waited: lock the new one
    try:
        yield
    finally:
        os.close(fd)


LOCK_WAIT = 1.0
"""Seconds :func:`_locked` waits for a lock that another run's debris check holds."""


_IN_GRID_WORKER = False
"""True in a ``--jobs`` worker process: its runs leave their siblings' directories alone
(the grid's parent removed the dead ones before starting the workers), so no worker locks
another's directory while that one starts."""


def _remove_dead_partials(parent: Path, keep: Path | None) -> list[Path]:
    """Remove the ``.<name>.partial/`` directories of ``parent`` that no process holds
    (their flock is free) and that nothing could resume (no config and checkpoint, or
    not a finished run): the debris of runs killed before their first epoch ended. A
    resumable one is kept for ``--resume``."""
    removed: list[Path] = []
    if fcntl is None:  # pragma: no cover - Windows
        return removed
    for p in parent.glob(f".*{PARTIAL_SUFFIX}"):
        if p == keep or not p.is_dir() or _resumable(p):
            continue
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process is writing it
            if not _resumable(p):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
                logger.info("removed %s, left by a run killed before its first checkpoint", p)
        finally:
            os.close(fd)
    return removed


def _finish(partial: Path, out_dir: Path) -> None:
    """Drop the checkpoint and rename the finished ``partial`` to ``out_dir``."""
    ckpt = partial / CHECKPOINT_DIR
    if ckpt.exists():
        shutil.rmtree(ckpt)
    replace_dir(partial, out_dir)


def run_one(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> RunResult:
    """Run one experiment into ``out_dir`` (atomically, resumably) and return its results.

    Steps: seed the global RNGs with ``cfg.seed``; :func:`~seqrec.experiment.prepare_data`;
    fit a :class:`~seqrec.recommender.Recommender` on ``train`` (validating on ``valid`` per
    epoch when there is one); evaluate on each part of ``cfg.eval.on``; save. Everything
    is written into ``.<name>.partial/`` beside ``out_dir`` (with the trainer's checkpoint
    after every epoch) and renamed to ``out_dir`` at the end, checkpoint removed; a
    successful run leaves nothing else behind. Temporaries of earlier killed runs of the
    same name are removed on start.

    Parameters
    ----------
    progress
        Show progress bars (tqdm on stderr) while training and evaluating.
    overwrite
        Replace an existing ``out_dir`` (only once the new run has succeeded).
    resume
        Continue where an earlier run into ``out_dir`` stopped: a finished run of the same
        config is returned without running again (``status="finished"``); an unfinished
        one continues from the checkpoint of its last finished epoch (epochs done are not
        redone; the result equals an uninterrupted run's; ``status="resumed"``). Without
        ``resume`` an unfinished run is discarded (a warning is logged) and run anew.
    on_epoch
        Called after every training epoch (:meth:`seqrec.train.Trainer.fit`), e.g. by an
        Optuna search to prune; an exception it raises stops the run (its checkpoint stays).

    With ``cfg.tracking`` (``[tracking] mlflow``) the run is also logged to MLflow
    (:mod:`seqrec.experiment.tracking`); the run directory is the same as without it.

    Raises
    ------
    RunExistsError
        ``out_dir`` exists and neither ``overwrite`` nor ``resume`` was given; or
        ``resume`` found a finished run of another config (the differing keys are named)
        and no ``overwrite``; or another process is writing the same run.
    ConfigError
        ``cfg`` still has a ``grid`` (expand it with :func:`~seqrec.experiment.grid` /
        :func:`run_grid`); or ``resume`` found an unfinished run of another config (the
        differing dotted keys are named; run without ``resume`` to start over).

    A run that fails (an exception, Ctrl-C) keeps ``.<name>.partial/`` only if it holds a
    checkpoint, so that ``resume=True`` can continue it; otherwise nothing is left.
    """
    if not isinstance(cfg, ExperimentConfig):
        raise ConfigError(
            f"run_one() needs an ExperimentConfig, got {type(cfg).__name__}; see load_experiment()"
        )
    if cfg.grid:
        raise ConfigError(
            f"experiment {cfg.name!r} has a [grid] over {list(cfg.grid)}; expand it with "
            "run_grid(grid(cfg), out_root) (seqrec run does this)"
        )
    if cfg.search is not None:
        raise ConfigError(
            f"experiment {cfg.name!r} has a [search] section; expand it with "
            "run_grid(grid(cfg), out_root) (seqrec run does this)"
        )
    tracking = cfg.tracking
    if tracking is not None:  # not part of the run: its directory is the same without it
        from seqrec.experiment.tracking import require_mlflow

        require_mlflow()
        cfg = cfg.model_copy(update={"tracking": None})
    out_dir = Path(out_dir)
    partial = partial_dir(out_dir)
    if out_dir.exists():
        finished = (out_dir / METRICS_FILE).is_file()
        if resume and finished:
            done = load_run(out_dir)
            diff = _diff_keys(done.config.to_dict(), cfg.to_dict())
            if not diff:
                logger.info("resume: %s is finished, not running it again", out_dir)
                if partial.is_dir():  # an interrupted overwrite of the same config
                    with _locked(partial, out_dir):
                        shutil.rmtree(partial, ignore_errors=True)
                done.status = "finished"
                return done
            if not overwrite:
                raise RunExistsError(
                    f"{out_dir} holds a finished run of a different config (differing keys: "
                    f"{_keys_text(diff)}); use overwrite (--overwrite) to replace it or "
                    "another output directory"
                )
        elif not overwrite:
            if resume:
                raise RunExistsError(
                    f"{out_dir} exists but is not a finished run; remove it or use overwrite"
                )
            raise RunExistsError(
                f"run directory {out_dir} already exists; pass overwrite=True (seqrec run "
                "--overwrite) to replace it, resume=True (--resume) to keep a finished run, or "
                "choose another output directory (--out)"
            )
    if resume:
        _check_resume_config(partial, cfg, out_dir)  # before anything is changed
    with _locked(partial, out_dir):  # makes partial (again, if a debris check removed it)
        apply_umask(partial)
        remove_stale(out_dir.parent, [f".{out_dir.name}.tmp-", f".{out_dir.name}.old-"])
        remove_dead_temporaries(out_dir.parent)
        if not _IN_GRID_WORKER:  # a parallel grid's parent swept its folder once, before
            _remove_dead_partials(out_dir.parent, keep=partial)  # its workers started
        from seqrec.experiment.tracking import start_tracking

        tracker = start_tracking(tracking, cfg, out_dir)
        if tracker is not None:
            hook = on_epoch

            def on_epoch(log: EpochLog) -> None:
                tracker.on_epoch(log)  # first: a pruned epoch is logged too
                if hook is not None:
                    hook(log)

        try:
            result = _run_in_partial(
                cfg, out_dir, partial, progress=progress, resume=resume, on_epoch=on_epoch
            )
        except BaseException as e:
            if tracker is not None:
                tracker.fail(e)
            if _resumable(partial):
                _tidy_partial(partial)
            else:
                shutil.rmtree(partial, ignore_errors=True)
            raise
        if tracker is not None:
            tracker.finish(result)
        return result


def _run_in_partial(
    cfg: ExperimentConfig,
    out_dir: Path,
    partial: Path,
    *,
    progress: bool,
    resume: bool,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> RunResult:
    from seqrec import __version__

    state: dict[str, Any] | None = None
    if resume and (partial / RESOLVED_CONFIG).is_file():
        _tidy_partial(partial)
        if _is_complete(partial):  # killed while renaming a finished run into place
            logger.info("resume: %s holds a finished run; moving it into place", partial)
            _finish(partial, out_dir)
            done = load_run(out_dir)
            done.status = "resumed"
            return done
        state = _checkpoint_state(partial)
        if state is None:
            logger.info("resume: %s has no checkpoint yet; running from the start", partial)
            _clear_partial(partial)
    else:
        if resume:
            logger.info("resume: nothing to resume for %s; running from the start", out_dir)
        _clear_partial(partial)
    if state is None:
        started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        header = (
            f"# resolved experiment config, written by seqrec {__version__} on {started}\n"
            "# reload it with seqrec.experiment.load_experiment(path) or `seqrec run` this file\n"
        )
        write_text_atomic(partial / RESOLVED_CONFIG, header + cfg.to_toml())
    with _RunLog(partial / LOG_FILE):
        try:
            if state is not None:
                logger.info(
                    "resuming %s from its checkpoint after epoch %d", out_dir, state["epoch"]
                )
            result = _run_into(cfg, partial, progress=progress, checkpoint=state, on_epoch=on_epoch)
        except BaseException as e:
            ckpt = _checkpoint_state(partial)
            if isinstance(e, RunPruned):
                logger.info("run %s pruned after epoch %d", out_dir, e.epoch)
            elif ckpt is not None:
                logger.warning(
                    "run %s stopped (%s); the checkpoint after epoch %d is kept in %s: "
                    "continue with resume=True (seqrec run --resume), or run without it to "
                    "start over",
                    out_dir,
                    type(e).__name__ if not str(e) else f"{type(e).__name__}: {e}",
                    ckpt["epoch"],
                    partial,
                )
            raise
    _finish(partial, out_dir)
    result.out_dir = out_dir
    result.status = "new" if state is None else "resumed"
    return result


def _run_into(
    cfg: ExperimentConfig,
    tmp: Path,
    *,
    progress: bool,
    checkpoint: Mapping[str, Any] | None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> RunResult:
    """Prepare, fit (checkpointing into ``tmp``; resuming when ``checkpoint`` is the JSON of
    the one there), evaluate and save into ``tmp``; ``metrics.json`` is written last."""
    from seqrec import __version__

    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    logger.info("experiment %r (seqrec %s), seed %d", cfg.name, __version__, cfg.seed)
    logger.debug("config: %s", json.dumps(cfg.to_dict(), sort_keys=False))
    _seed_everything(cfg.seed)

    split, stats = prepare_data(cfg)
    timings = dict(stats.pop("timings"))
    stats["fingerprint"] = _fingerprints(split)

    show = bool(progress and cfg.train.progress)
    train_cfg = cfg.train.model_copy(update={"progress": show})
    rec = Recommender(cfg.model, cfg.objective, train_cfg, seed=cfg.seed)
    t = time.perf_counter()
    rec.fit(
        split.train,
        split.valid,
        checkpoint_dir=tmp,
        resume=checkpoint is not None,
        on_epoch=on_epoch,
    )
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
    train_events = sum(h["events"] for h in history)
    train_seconds = sum(h["seconds"] for h in history)

    reports: dict[str, EvalReport] = {}
    t = time.perf_counter()
    threshold = choose_threshold(rec, split.valid, cfg.eval)
    if cfg.eval.threshold == "valid" and threshold is not None:
        timings["choose_threshold"] = time.perf_counter() - t
        logger.info("threshold chosen on valid (best F1 micro): %s", threshold)
    for part in cfg.eval.on:
        frame = split.valid if part == "valid" else split.test
        if frame is None:
            logger.warning("eval.on has %r but the split has no %s part; skipped", part, part)
            continue
        t = time.perf_counter()
        report = evaluate_part(
            rec, frame, cfg.eval, part=part, threshold=threshold, progress=progress, per_query=True
        )
        timings[f"evaluate_{part}"] = time.perf_counter() - t
        report.protocol["data_split"] = split.protocol
        if report.queries is not None:  # for paired tests between runs (seqrec.significance)
            (tmp / QUERIES_DIR).mkdir(exist_ok=True)
            write_parquet_atomic(tmp / QUERIES_DIR / f"{part}.parquet", report.queries)
        reports[part] = report
        logger.info(
            "%s: %s (%d queries)",
            part,
            ", ".join(f"{m} {v:.4f}" for m, v in report.metrics.items()),
            report.n_queries,
        )

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
            "resumed_after_epoch": None if checkpoint is None else checkpoint.get("epoch"),
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
    metrics = json_safe(metrics)
    write_text_atomic(tmp / METRICS_FILE, json.dumps(metrics, indent=2, allow_nan=False))
    logger.info("finished in %.1fs", timings["total"])
    return RunResult(out_dir=tmp, config=cfg, metrics=metrics, reports=reports, recommender=rec)


def _fingerprints(split: Any) -> dict[str, str | None]:
    """A content hash of each part of the split (``metrics.json`` -> ``data.fingerprint``):
    runs with the same fingerprints saw the same data."""
    import polars as pl

    from seqrec.recommender import fingerprint

    out: dict[str, str | None] = {}
    for part in ("train", "valid", "test"):
        frame = getattr(split, part, None)
        out[part] = fingerprint(frame) if isinstance(frame, pl.DataFrame) else None
    return out


# =========================================================================== run_grid
def _failure_record(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds the record of a failed grid point (no finished run)."""
    return (run_dir / ERROR_FILE).is_file() and not (run_dir / METRICS_FILE).is_file()


def _record_failure(run_dir: Path, cfg: ExperimentConfig, exc: BaseException) -> str:
    """Write ``error.json`` (type, message, traceback) and the config into ``run_dir``."""
    import traceback

    from seqrec import __version__

    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = cfg.model_copy(update={"tracking": None})  # not part of a run (see run_one())
    write_text_atomic(run_dir / RESOLVED_CONFIG, cfg.to_toml())
    record = {
        "error": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "failed": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seqrec_version": __version__,
    }
    write_text_atomic(run_dir / ERROR_FILE, json.dumps(record, indent=2))
    return text


def _grid_point(
    cfg: ExperimentConfig, run_dir: Path, progress: bool, overwrite: bool, resume: bool
) -> RunResult:
    """Run one grid point (retrying a recorded failure); an exception other than
    :class:`RunExistsError` is recorded in ``run_dir`` and returned as a failed result."""
    if _failure_record(run_dir):
        logger.info("running %s again (it failed before)", run_dir)
        shutil.rmtree(run_dir)
    try:
        res = run_one(cfg, run_dir, progress=progress, overwrite=overwrite, resume=resume)
    except RunExistsError:
        raise
    except Exception as e:
        text = _record_failure(run_dir, cfg, e)
        logger.error("grid point %s failed (%s); going on with the others", run_dir, text)
        cfg = cfg.model_copy(update={"tracking": None})  # as run_one() returns configs
        res = RunResult(out_dir=run_dir, config=cfg, metrics={}, status="failed", error=text)
    res.recommender = None
    return res


def _worker_init(threads: int, parent: int) -> None:
    """Set up a ``--jobs`` worker: its torch threads, and its death with the grid's process.

    On Linux the worker asks the kernel for SIGKILL when its parent dies
    (``PR_SET_PDEATHSIG``): a grid killed with SIGKILL then stops whole, each worker's run
    keeping its last epoch checkpoint for ``--resume``, instead of orphans that finish their
    runs (or hold their locks) while the grid is resumed.
    """
    global _IN_GRID_WORKER
    _IN_GRID_WORKER = True
    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: orphans finish
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a process gets when its parent dies (Linux)."""


MAX_AUTO_JOBS = 8
"""The most worker processes ``jobs = "auto"`` starts (each loads the data itself)."""


def auto_jobs(configs: Sequence[ExperimentConfig]) -> int:
    """``jobs = "auto"``: one worker per torch thread of this process (one thread each), at
    most one per run and :data:`MAX_AUTO_JOBS`; 1 for a single run or when a run trains on
    a GPU.

    Measured (``benchmarks/bench_jobs.py``, 2-core machine): two one-thread workers ran a
    grid of four ~3-second GRU4Rec points 1.54x faster than one two-thread process; on
    points of ~0.5 s the start of the workers (~1 s) made them 0.77x as fast.
    """
    from seqrec.train import resolve_device

    if len(configs) < 2 or any(resolve_device(c.train.device).type != "cpu" for c in configs):
        return 1
    return max(1, min(len(configs), torch.get_num_threads(), MAX_AUTO_JOBS))


def run_grid(
    configs: Sequence[ExperimentConfig],
    out_root: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    jobs: int | Literal["auto"] = 1,
) -> list[RunResult]:
    """Run each config into ``out_root/<name>-<point id>-s<seed>``; write the summaries.

    The point id (:func:`~seqrec.experiment.search.point_id`) is a hash of the resolved
    config without ``name`` and ``seed``: a point keeps its directory when the grid's value
    lists grow, shrink or are reordered, so ``resume`` reuses every finished point and
    runs only the new ones (an interrupted one continues from its checkpoint, see
    :func:`run_one`). A point that raises an exception is recorded (``error.json`` and its
    config in its directory, ``status``/``error`` in the summary) and the grid goes on; the
    next call (with or without ``resume``) runs a failed point again. Ctrl-C and kills stop
    the grid.

    Two tables, rewritten atomically after each run (current even when a later one fails):
    ``summary.csv``, one row per run (``run``, ``point``, ``seed``, ``status``, ``error``,
    the keys that vary between the points, every metric as ``<part>.<metric>``,
    ``train_seconds``, ``final_loss``), and ``points.csv``, one row per point with, for
    every metric, ``mean``, ``std``, ``ci_low`` and ``ci_high`` over its seeds
    (:func:`~seqrec.experiment.search.seed_stats`, a 95% t-interval) and ``n_seeds``. Only
    the runs of ``configs`` appear: runs of points no longer in the grid stay on disk but
    leave the tables. The fitted models are not kept in the results.

    ``jobs > 1`` (or ``"auto"``, see :func:`auto_jobs`) runs that many points at a time in
    worker processes (spawned), the torch
    threads of this process split between them (at least one each), without progress bars;
    the tables list the finished runs in grid order. Each run is seeded as in a serial grid,
    so the results are those of ``jobs = 1`` up to the floating-point effects of a
    different thread count.
    """
    from seqrec.experiment.search import run_name

    configs = list(configs)
    if not configs:
        raise ConfigError("run_grid() got no configs")
    if jobs == "auto":
        jobs = auto_jobs(configs)
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be 'auto' or an integer >= 1, got {jobs!r}")
    if any(c.tracking is not None for c in configs):  # once, before any point runs
        from seqrec.experiment.tracking import prepare_tracking

        prepare_tracking(configs)
    names = [run_name(c) for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"run_grid(): the same point and seed twice: {dup}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    remove_stale(out_root, [f".{SUMMARY_FILE}.tmp-", f".{POINTS_FILE}.tmp-"])
    remove_dead_temporaries(out_root)
    _remove_dead_partials(out_root, keep=None)
    keys = [k for k in varying_keys(configs) if k != "seed"]
    done: list[RunResult | None] = [None] * len(configs)

    def record(i: int, res: RunResult) -> None:
        done[i] = res
        rows = [_summary_row(r, keys) for r in done if r is not None]
        _write_summary(out_root / SUMMARY_FILE, rows)
        _write_summary(out_root / POINTS_FILE, point_rows(rows, keys))

    if jobs == 1 or len(configs) == 1:
        for i, (cfg, name) in enumerate(zip(configs, names, strict=True)):
            logger.info("grid run %d/%d -> %s", i + 1, len(configs), out_root / name)
            record(i, _grid_point(cfg, out_root / name, progress, overwrite, resume))
    else:
        import multiprocessing
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

        jobs = min(jobs, len(configs))
        threads = max(1, torch.get_num_threads() // jobs)
        logger.info(
            "grid: %d runs, %d at a time, %d torch thread(s) each", len(configs), jobs, threads
        )
        pool = ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(threads, os.getpid()),
        )
        try:
            futures = {
                pool.submit(_grid_point, cfg, out_root / name, False, overwrite, resume): i
                for i, (cfg, name) in enumerate(zip(configs, names, strict=True))
            }
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in finished:
                    record(futures[f], f.result())  # re-raises a worker's RunExistsError
        except BaseException:
            # SIGTERM/Ctrl-C/a worker's error: stop the runs in flight now (each keeps its
            # last epoch checkpoint for --resume) rather than wait for them to finish
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    return [r for r in done if r is not None]


def _summary_row(res: RunResult, keys: Sequence[str]) -> dict[str, Any]:
    """The ``summary.csv`` row of one grid run."""
    from seqrec.experiment.search import point_id

    cfg = res.config
    flat = flatten_dict(cfg.to_dict())
    row: dict[str, Any] = {
        "run": res.out_dir.name,
        "point": point_id(cfg),
        "seed": cfg.seed,
        "status": res.status,
        "error": res.error,
    }
    for k in keys:
        v = flat.get(k)
        row[k] = json.dumps(v) if isinstance(v, list | dict) else v
    for part, rep in res.reports.items():
        for m, v in rep.metrics.items():
            row[f"{part}.{m}"] = v
    row["train_seconds"] = res.metrics.get("train", {}).get("seconds")
    row["final_loss"] = res.metrics.get("train", {}).get("final_loss")
    return row


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``<part>.<metric>`` columns of summary rows, plus ``train_seconds``."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if "." in k and k.split(".", 1)[0] in ("valid", "test")]
    return [*dict.fromkeys(cols), "train_seconds"]


def point_rows(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One row per point of the summary ``rows`` (in first-seen order): ``point``, the
    varying ``keys``, ``n_seeds``, ``n_failed`` and ``<column>.mean/.std/.ci_low/.ci_high``
    over the seeds that finished."""
    from seqrec.experiment.search import seed_stats

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r["point"]), []).append(r)
    cols = metric_columns(rows)
    out: list[dict[str, Any]] = []
    for pid, rs in groups.items():
        ok = [r for r in rs if r.get("status") not in ("failed", "pruned")]
        row: dict[str, Any] = {"point": pid, **{k: rs[0].get(k) for k in keys}}
        row["n_seeds"] = len(ok)
        row["n_failed"] = sum(r.get("status") == "failed" for r in rs)
        if any(r.get("status") == "pruned" for r in rs):
            row["n_pruned"] = sum(r.get("status") == "pruned" for r in rs)
        for c in cols:
            st = seed_stats([r.get(c) for r in ok])
            for stat in ("mean", "std", "ci_low", "ci_high"):
                row[f"{c}.{stat}"] = st[stat]
        out.append(row)
    return out


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in header})
    write_text_atomic(path, buf.getvalue())


__all__ = [
    "MAX_AUTO_JOBS",
    "RunResult",
    "auto_jobs",
    "load_run",
    "metric_columns",
    "point_rows",
    "run_grid",
    "run_one",
]
