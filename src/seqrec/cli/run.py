"""``seqrec run`` (alias ``train``): run an experiment file, or its grid, into run directories."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from seqrec.cli._common import FORMATTER, add_progress, common_options, note, out, progress
from seqrec.exceptions import ConfigError

EPILOG = """\
The run directory (default runs/<name>) receives config.resolved.toml, metrics.json,
log.txt and artifact/ (the saved model). Until it finishes, the run lives in the hidden
sibling .<name>.partial/ with checkpoint/ (written after every training epoch) and is
renamed into place at the end: a finished run leaves nothing else behind. An existing
run directory is an error unless --overwrite (replace it once the new run succeeded) or
--resume.

--resume continues after a kill (SIGKILL, SIGTERM, Ctrl-C): a finished run
of the same config is kept and not run again; an unfinished one continues from the
checkpoint of its last finished epoch, to the result of an uninterrupted run; a changed
config (data, split, model, train, ...) is refused, naming the differing keys. Without
--resume an unfinished run is discarded (with a warning) and starts over. A failed run
keeps .<name>.partial/ only if it holds a checkpoint. --overwrite --resume continues an
interrupted --overwrite.

With a [grid] table in the file (the search space), or --grid, every point runs into
<out>/<name>-<point>-s<seed>/, where <point> is a hash of the point's resolved config:
--resume after growing or shrinking the value lists reuses every finished point and
runs only the new ones. [search] chooses method = "grid" (every combination) or
"random" (n points drawn with search.seed, also from ranges {low, high, log}), the
seeds of every point (seeds = [0, 1, 2] or n_seeds = 3) and max_runs. <out>/summary.csv
has one row per run, <out>/points.csv one per point with mean, std and 95% interval over
its seeds; the table printed shows mean ± std [95% interval]. A point that fails is
recorded (status and error in summary.csv, error.json in its directory), the grid goes
on and the exit status is 1; the next run of the grid retries it. method = "variants"
runs named points, one change each around the file ([search.variants] baseline = {},
hidden_100 = {"model.layers" = [100]}): the name is the run's variant, a column of the
tables. --jobs N runs N points at a time in worker processes (torch threads split
between them); the default, auto, runs one one-thread worker per core on CPU, which on
2 cores ran ~3-second points 1.5x faster than one process (benchmarks/README.md).

method = "optuna" (pip install 'seqrec[optuna]') runs n trials chosen by Optuna's TPE
(sampler = "tpe") or random sampler from the [grid] lists and ranges, maximising the
validation metric search.metric (default train.valid_metric), and prunes a trial after an
epoch whose validation value is below the median of the earlier trials (pruner =
"median"; "none": never); a pruned trial is recorded (status pruned, pruned.json in its
directory). The study lives in <out>/optuna.journal: --resume continues it to n trials
(finished trials are not rerun, an interrupted one continues from its checkpoint). One
trial at a time (--jobs 1).

--mlflow DIR (or [tracking] mlflow = "DIR" in the file; pip install 'seqrec[mlflow]')
also logs every run to MLflow: params (the resolved config), per-epoch and final
metrics, tags and the run directory as artifacts; DIR gets an SQLite store mlflow.db.
The run directories are the same with or without it.

--set and --grid values are TOML values (3, 0.1, true, [100], "text"); anything that
is not valid TOML is taken as a plain string (model.name=pop).

examples:
  seqrec run configs/ml100k_notebook.toml
  seqrec run configs/ml100k_gru4rec.toml --set train.epochs=2 --set model.layers=[64]
  seqrec run configs/ml100k_notebook.toml --grid train.learning_rate=0.001,0.005 --out runs/lr
  seqrec run configs/ml100k_gru4rec.toml --set model.name=pop --out runs/pop --overwrite
  seqrec run configs/ml100k_gru4rec.toml --resume     # after a kill: continue it
  seqrec run configs/ml100k_notebook_grid.toml --set search.n_seeds=3 --resume
  seqrec run configs/synthetic_optuna.toml --mlflow runs/mlflow   # Optuna, logged to MLflow
  seqrec run configs/ml100k_notebook_experiments.toml --out runs/ml100k_experiments
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        aliases=["train"],
        parents=[common_options()],
        help="run an experiment file (train, evaluate, save) into a run directory",
        description="Run an experiment file: read, clean, split, train, evaluate, save.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment file (.toml, .yaml)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting, e.g. train.epochs=3 (repeatable)",
    )
    p.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="add a grid dimension, e.g. model.layers=[50],[100] (repeatable)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="run directory (default: runs/<name>); the grid root with a grid",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run directory (after the new run succeeded)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue after a kill: keep runs finished with the same config, continue an "
        "unfinished run from its last epoch checkpoint, refuse a changed config",
    )
    p.add_argument(
        "--max-runs",
        type=int,
        metavar="N",
        help="refuse a grid or search of more than N runs (points x seeds); sets search.max_runs",
    )
    p.add_argument(
        "--jobs",
        type=parse_jobs,
        default=os.environ.get(JOBS_ENV, "auto"),
        metavar="N|auto",
        help="run N grid points at a time in worker processes, the torch threads split "
        "between them; auto (default; $SEQREC_JOBS overrides it): one one-thread worker "
        "per torch thread on CPU (at most 8), 1 for a single run or on a GPU",
    )
    p.add_argument(
        "--mlflow",
        metavar="DIR|URI",
        help="also log every run to MLflow (pip install 'seqrec[mlflow]'): a directory (an "
        "SQLite store DIR/mlflow.db, artifacts in DIR/artifacts) or a tracking URI; sets "
        "tracking.mlflow",
    )
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a table")
    add_progress(p)
    p.set_defaults(func=cmd_run)


JOBS_ENV = "SEQREC_JOBS"
"""Environment variable with the default of ``--jobs``."""


def parse_jobs(text: str) -> int | str:
    """``--jobs``: ``auto`` or an integer >= 1."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes 'auto' or an integer >= 1, not {text!r}")
    return n


def parse_grid_arg(item: str) -> tuple[str, list[Any]]:
    """``key=v1,v2`` -> ``(key, [v1, v2])``; values as TOML (``[50],[100]`` works)."""
    import tomllib

    from seqrec.experiment import parse_override, parse_value

    key, _ = parse_override(item)
    text = item.partition("=")[2].strip()
    try:
        values = tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [parse_value(v.strip()) for v in text.split(",")]
    if not values:
        raise ConfigError(f"--grid {item!r}: give at least one value, e.g. {key}=1,2")
    return key, values


class Terminated(KeyboardInterrupt):
    """SIGTERM during ``seqrec run``: raised in the main thread so that the run cleans up
    (its partial directory keeps only the checkpoint of the last finished epoch)."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated (SIGTERM)")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return _cmd_run(args)  # main() turns SIGTERM into Terminated for run/train
    except Terminated:
        note("seqrec: terminated (SIGTERM); continue the run with --resume")
        return 128 + signal.SIGTERM


def _resume_note(result: Any) -> None:
    if result.status == "finished":
        note(
            f"{result.out_dir} is finished with this config: not run again (--overwrite reruns it)"
        )
    elif result.status == "resumed":
        after = result.metrics.get("train", {}).get("resumed_after_epoch")
        note(
            f"resumed {result.out_dir}"
            + (f" after epoch {after}" if after is not None else " (finished, moved into place)")
        )


def _cmd_run(args: argparse.Namespace) -> int:
    from seqrec.experiment import is_search, load_experiment, run_one
    from seqrec.experiment.api import option_overrides, run_search

    sets = [*(args.set or ()), *option_overrides(args.max_runs, args.mlflow)]
    cfg = load_experiment(args.experiment, sets)
    extra = dict(parse_grid_arg(g) for g in (args.grid or ()))
    out_dir = Path(args.out) if args.out else Path("runs") / cfg.name
    show = progress(args)
    optuna = cfg.search is not None and cfg.search.method == "optuna"
    if is_search(cfg, extra):  # as seqrec.experiment.run() decides
        results = run_search(
            cfg,
            out_dir,
            extra,
            progress=show,
            overwrite=args.overwrite,
            resume=args.resume,
            jobs=args.jobs,
            announce=note,
        )
        if args.resume:
            for r in results:
                _resume_note(r)
        failed = [r for r in results if r.status == "failed"]
        for r in failed:
            note(f"failed: {r.out_dir.name}: {r.error}")
        if args.json:
            out(json.dumps([r.metrics for r in results], indent=2))
        else:
            out(grid_table(results, out_dir))
            if optuna:
                out(_best_line(out_dir, cfg))
        if failed:
            note(
                f"{len(failed)} of {len(results)} runs failed (see error.json in their "
                "directories); run the grid again to retry them"
            )
            return 1
        return 0
    cfg = cfg.model_copy(update={"search": None})  # one run: max_runs is met
    result = run_one(cfg, out_dir, progress=show, overwrite=args.overwrite, resume=args.resume)
    _resume_note(result)
    if args.json:
        out(json.dumps(result.metrics, indent=2))
        return 0
    out(f"run: {cfg.name} ({cfg.model.name}) -> {result.out_dir}")
    tr = result.metrics.get("train", {})
    if tr.get("epochs"):
        eps = tr.get("events_per_second")
        out(
            f"trained {tr['epochs']} epoch(s) in {tr['seconds']:.1f}s"
            + (f" ({eps:,.0f} events/s)" if eps else "")
            + (f", final loss {tr['final_loss']:.4f}" if tr.get("final_loss") is not None else "")
        )
    out(result.table())
    return 0


def _best_line(out_dir: Path, cfg: Any) -> str:
    from seqrec.experiment.optuna_search import best_trial

    best = best_trial(out_dir, cfg.name)
    if best is None:
        return "optuna: no trial finished (all pruned or failed)"
    metric = cfg.search.objective_metric(cfg.train, cfg.eval.metrics)
    return (
        f"optuna best: trial {best['number']}, valid {metric} {best['value']:.4f}, "
        f"{best['params']} ({', '.join(best['runs'])}; study: {out_dir / 'optuna.journal'})"
    )


def grid_table(results: Sequence[Any], out_dir: Path) -> str:
    """One row per grid point: its directory (``-s*`` with several seeds), the varying
    keys, the number of seeds and the test (else valid) metrics as mean ± std [95%
    interval] over the seeds (the value alone with one seed)."""
    from seqrec.experiment import (
        POINTS_FILE,
        SUMMARY_FILE,
        flatten_dict,
        format_stats,
        format_table,
        point_id,
        seed_stats,
        varying_keys,
    )

    keys = [k for k in varying_keys([r.config for r in results]) if k != "seed"]
    part = "test" if any("test" in r.reports for r in results) else "valid"
    metric_names: list[str] = []
    for r in results:
        if part in r.reports:
            metric_names += [m for m in r.reports[part].metrics if m not in metric_names]
    points: dict[str, list[Any]] = {}
    for r in results:
        points.setdefault(point_id(r.config), []).append(r)
    rows = []
    for pid, rs in points.items():
        flat = flatten_dict(rs[0].config.to_dict())
        vals = [
            json.dumps(flat.get(k)) if isinstance(flat.get(k), list) else str(flat.get(k))
            for k in keys
        ]
        ok = [r for r in rs if r.status not in ("failed", "pruned")]
        name = rs[0].out_dir.name if len(rs) == 1 else f"{rs[0].config.name}-{pid}-s*"
        stats = [
            format_stats(
                seed_stats([r.reports[part].metrics.get(m) for r in ok if part in r.reports])
            )
            for m in metric_names
        ]
        bad = [r.status for r in rs if r.status in ("failed", "pruned")]
        seeds = f"{len(ok)}" + "".join(
            f" ({bad.count(s)} {s})" for s in ("failed", "pruned") if s in bad
        )
        rows.append([name, *vals, seeds, *stats])
    table = format_table(["run", *keys, "seeds", *[f"{part} {m}" for m in metric_names]], rows)
    return f"{table}\n(per run: {out_dir / SUMMARY_FILE}; per point: {out_dir / POINTS_FILE})"
