"""Runs: one experiment config -> one run directory; grids of runs with a summary.

:func:`run` writes ``config.resolved.toml``, ``metrics.json``, ``log.txt`` and ``artifact/``
into a temporary sibling directory renamed into place at the end, so a failed or interrupted
run never leaves a half-written run (or model) behind. :func:`run_grid` runs several configs
and keeps ``summary.csv`` current after each. :func:`load_run` reads a finished run back.
Only :func:`run` seeds the global RNGs (``random``, NumPy, torch); library code never does.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrec._io import replace_dir
from seqrec.evaluate import EvalReport
from seqrec.exceptions import ConfigError, DataError
from seqrec.experiment.config import ExperimentConfig
from seqrec.experiment.errors import RunExistsError
from seqrec.experiment.files import (
    ARTIFACT_DIR,
    LOG_FILE,
    METRICS_FILE,
    RESOLVED_CONFIG,
    SUMMARY_FILE,
    json_safe,
    write_text_atomic,
)
from seqrec.experiment.load import load_experiment
from seqrec.experiment.overrides import flatten_dict, varying_keys
from seqrec.experiment.prepare import prepare_data
from seqrec.experiment.tables import metrics_table
from seqrec.recommender import Recommender

logger = logging.getLogger(__name__)


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - run() seeds globals on purpose
    torch.manual_seed(seed)


def run(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    resume: bool = False,
) -> RunResult:
    """Run one experiment into ``out_dir`` (atomically) and return its results.

    Steps: seed the global RNGs with ``cfg.seed``; :func:`~seqrec.experiment.prepare_data`;
    fit a :class:`~seqrec.recommender.Recommender` on ``train`` (validating on ``valid`` per
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
        ``cfg`` still has a ``grid`` (expand it with :func:`~seqrec.experiment.grid` /
        :func:`run_grid`).
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
    metrics = json_safe(metrics)
    (tmp / METRICS_FILE).write_text(
        json.dumps(metrics, indent=2, allow_nan=False), encoding="utf-8"
    )
    logger.info("finished in %.1fs", timings["total"])
    return RunResult(out_dir=tmp, config=cfg, metrics=metrics, reports=reports, recommender=rec)


# =========================================================================== run_grid
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
    write_text_atomic(path, buf.getvalue())


__all__ = ["RunResult", "load_run", "run", "run_grid"]
