"""The ``seqrec`` command line: thin adapters over the library.

Only this module parses ``argv``. Every error seqrec raises on purpose (and bad configs,
missing files) is printed as ``seqrec: error: <message>`` with exit status 2, without a
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import torch
from pydantic import ValidationError

from seqrec.batch import _known, recommend_file
from seqrec.columns import Columns
from seqrec.exceptions import ConfigError, DataError, SeqrecError, UnknownItemError

logger = logging.getLogger("seqrec.cli")

EXIT_ERROR = 2

# ------------------------------------------------------------------------ help texts
_MAIN_EPILOG = """\
examples:
  seqrec demo                                   # synthetic data, GRU4Rec vs popularity, <1 min
  seqrec stats ml-100k --clean                  # dataset statistics before/after cleaning
  seqrec run configs/ml100k_gru4rec.toml --set train.epochs=3
  seqrec evaluate runs/ml100k_gru4rec --split test
  seqrec recommend runs/ml100k_gru4rec --items 50 181 -k 10
  seqrec recommend runs/ml100k_gru4rec --input sessions.csv --output recs.csv

Registered datasets are looked up in $SEQREC_DATA and the user cache (never downloaded
unless an experiment sets data.download = true). Run 'seqrec COMMAND --help' for details.
"""

_RUN_EPILOG = """\
The run directory (default runs/<name>) receives config.resolved.toml, metrics.json,
log.txt and artifact/ (the saved model). It is written atomically: a failed run leaves
nothing behind. An existing directory is an error unless --overwrite or --resume.

With a [grid] table in the file, or --grid, every combination runs into
<out>/<name>-<i> (i from 0) and <out>/summary.csv collects the metrics.

--set and --grid values are TOML values (3, 0.1, true, [100], "text"); anything that
is not valid TOML is taken as a plain string (model.name=pop).

examples:
  seqrec run configs/ml100k_notebook.toml
  seqrec run configs/ml100k_gru4rec.toml --set train.epochs=2 --set model.layers=[64]
  seqrec run configs/ml100k_notebook.toml --grid train.learning_rate=0.001,0.005 --out runs/lr
  seqrec run configs/ml100k_gru4rec.toml --set model.name=pop --out runs/pop --overwrite
"""

_DEMO_EPILOG = """\
Generates sessions whose next item follows a planted successor with probability 0.9
(seqrec.data.synthetic), splits the last days off as valid/test, trains GRU4Rec and a
popularity baseline and prints their test Recall@20 / MRR@20 next to the best achievable
Recall@20. Nothing is downloaded.

examples:
  seqrec demo
  seqrec demo --out runs/demo            # keep both run directories
  seqrec demo --sessions 500 --epochs 1  # quicker
"""

_STATS_EPILOG = """\
examples:
  seqrec stats ml-100k
  seqrec stats ml-100k --clean --min-item-support 5 --min-session-length 2
  seqrec stats events.csv --json
"""

_EVAL_EPILOG = """\
DATA is an experiment file (its data, preprocessing and split are used), a registered
dataset name, or an event file; without DATA the run's own data is used. Unless
--split all, DATA is preprocessed and split as the run's config.resolved.toml (or
--experiment FILE) says, and the chosen part is evaluated. --split all evaluates every
session of DATA as it is (every event but the first of a session is a target). Items
unknown to the model are dropped and counted in the protocol.

examples:
  seqrec evaluate runs/ml100k_gru4rec                       # its own test split again
  seqrec evaluate runs/ml100k_gru4rec --split valid --metrics recall@10 ndcg@10
  seqrec evaluate runs/synthetic/artifact test_sessions.csv --split all --json
"""

_REC_EPILOG = """\
Single session: item ids in order (oldest first) after --items; prints rank, item, score.

Batch: --input FILE (CSV/TSV or Parquet with a session, an item and optionally a time
column) -> --output FILE (.csv, .tsv or .parquet) with one row per session and rank:
session_id, rank, item_id, score (external ids). The input is streamed: sessions are
sorted (skipped with --sorted) and read in chunks, scored --batch-size sessions at a
time, and the output is written to a temporary file renamed at the end. Events with
items unknown to the model are dropped and counted on stderr (--unknown error makes
them an error).

examples:
  seqrec recommend runs/ml100k_gru4rec --items 50 181 258 -k 10
  seqrec recommend runs/ml100k_gru4rec --input sessions.csv --output recs.parquet -k 20
  seqrec recommend model/ --input log.tsv --output recs.csv --session-col SessionId \\
      --item-col ItemId --time-col Time --unknown error
"""


# ------------------------------------------------------------------------- helpers
def _progress(args: argparse.Namespace) -> bool:
    flag = getattr(args, "progress", None)
    return bool(sys.stderr.isatty()) if flag is None else bool(flag)


def _print(text: str = "") -> None:
    print(text, file=sys.stdout)


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _data_config(arg: str, *, data_dir: str | None = None, fmt: str = "auto") -> Any:
    """A DataConfig from a CLI argument: a registered dataset, 'synthetic' or a file."""
    from seqrec.datasets import DATASETS
    from seqrec.experiment import SYNTHETIC, DataConfig

    if arg == SYNTHETIC or arg in DATASETS:
        return DataConfig(dataset=arg, data_dir=data_dir)
    p = Path(arg).expanduser()
    if not p.exists():
        raise DataError(
            f"{arg!r} is neither a registered dataset ({', '.join([*sorted(DATASETS), SYNTHETIC])}) "
            "nor an existing file"
        )
    return DataConfig(path=str(p), format=fmt)  # type: ignore[arg-type]


def _is_experiment_file(arg: str) -> bool:
    return Path(arg).suffix.lower() in (".toml", ".yaml", ".yml")


def _artifact_dir(model_dir: str) -> Path:
    p = Path(model_dir).expanduser()
    if not p.exists():
        raise DataError(f"model directory not found: {p}")
    return p / "artifact" if (p / "artifact").is_dir() else p


def _run_config_path(model_dir: str) -> Path | None:
    p = Path(model_dir).expanduser()
    for cand in (p / "config.resolved.toml", p.parent / "config.resolved.toml"):
        if cand.is_file():
            return cand
    return None


def _load_model(model_dir: str) -> Any:
    from seqrec.recommender import Recommender

    return Recommender.load(_artifact_dir(model_dir))


def _parse_grid_arg(item: str) -> tuple[str, list[Any]]:
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


# --------------------------------------------------------------------------- stats
def cmd_stats(args: argparse.Namespace) -> int:
    from seqrec.experiment import (
        PreprocessConfig,
        apply_preprocess,
        flatten_dict,
        format_table,
        read_data,
    )
    from seqrec.preprocess import describe

    cfg = _data_config(args.data, data_dir=args.data_dir, fmt=args.format)
    df = read_data(cfg)
    columns = {"raw": describe(df)}
    if args.clean:
        pre = PreprocessConfig(
            min_session_length=args.min_session_length, min_item_support=args.min_item_support
        )
        cleaned, info = apply_preprocess(df, pre)
        columns["cleaned"] = describe(cleaned)
        columns["cleaned"]["filter_rounds"] = info.get("filter_rounds", 0)
    if args.json:
        _print(json.dumps(columns, indent=2))
        return 0
    flat = {name: flatten_dict(d) for name, d in columns.items()}
    keys: list[str] = []
    for f in flat.values():
        keys += [k for k in f if k not in keys]
    rows = [[k, *[_cell(flat[n].get(k)) for n in flat]] for k in keys]
    _print(f"{args.data}")
    _print(format_table(["statistic", *flat], rows))
    if args.clean:
        _print(
            f"(cleaned: sessions >= {args.min_session_length} events, items >= "
            f"{args.min_item_support} events, repeated until stable)"
        )
    return 0


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


# ----------------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from seqrec.experiment import grid, load_experiment, run, run_grid

    cfg = load_experiment(args.experiment, args.set or ())
    extra = dict(_parse_grid_arg(g) for g in (args.grid or ()))
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    progress = _progress(args)
    if cfg.grid or extra:
        configs = grid(cfg, extra)
        _note(f"grid: {len(configs)} runs into {out}/")
        results = run_grid(
            configs, out, progress=progress, overwrite=args.overwrite, resume=args.resume
        )
        if args.json:
            _print(json.dumps([r.metrics for r in results], indent=2))
            return 0
        _print(_grid_table(results, out))
        return 0
    result = run(cfg, out, progress=progress, overwrite=args.overwrite, resume=args.resume)
    if args.json:
        _print(json.dumps(result.metrics, indent=2))
        return 0
    _print(f"run: {cfg.name} ({cfg.model.name}) -> {result.out_dir}")
    tr = result.metrics.get("train", {})
    if tr.get("epochs"):
        eps = tr.get("events_per_second")
        _print(
            f"trained {tr['epochs']} epoch(s) in {tr['seconds']:.1f}s"
            + (f" ({eps:,.0f} events/s)" if eps else "")
            + (f", final loss {tr['final_loss']:.4f}" if tr.get("final_loss") is not None else "")
        )
    _print(result.table())
    return 0


def _grid_table(results: Sequence[Any], out: Path) -> str:
    from seqrec.experiment import SUMMARY_FILE, flatten_dict, format_table, varying_keys

    keys = varying_keys([r.config for r in results])
    part = "test" if any("test" in r.reports for r in results) else "valid"
    metric_names: list[str] = []
    for r in results:
        if part in r.reports:
            metric_names += [m for m in r.reports[part].metrics if m not in metric_names]
    rows = []
    for r in results:
        flat = flatten_dict(r.config.to_dict())
        vals = [
            json.dumps(flat.get(k)) if isinstance(flat.get(k), list) else str(flat.get(k))
            for k in keys
        ]
        rep = r.reports.get(part)
        rows.append(
            [r.out_dir.name, *vals, *[rep.metrics.get(m) if rep else None for m in metric_names]]
        )
    table = format_table(["run", *keys, *[f"{part} {m}" for m in metric_names]], rows)
    return f"{table}\n(summary: {out / SUMMARY_FILE})"


# ---------------------------------------------------------------------------- demo
def demo_configs(
    *, sessions: int = 2000, items: int = 200, epochs: int = 3, seed: int = 0
) -> list[Any]:
    """The embedded demo: synthetic sessions, GRU4Rec and the popularity baseline."""
    from seqrec.experiment import ExperimentConfig, apply_overrides

    raw: dict[str, Any] = {
        "name": "demo-gru4rec",
        "seed": seed,
        "data": {
            "dataset": "synthetic",
            "synthetic": {"n_sessions": sessions, "n_items": items, "seed": seed},
        },
        "preprocess": {"min_session_length": 2, "min_item_support": 1},
        "split": {"method": "time", "test_days": 6, "valid_days": 6},
        "model": {"name": "gru4rec", "layers": [64]},
        "objective": {"loss": "cross-entropy", "negatives": "sampled", "n_sample": 0},
        "train": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.1, "optimizer": "adagrad"},
        "eval": {"metrics": ["recall@20", "mrr@20"], "on": ["valid", "test"]},
    }
    pop = apply_overrides(raw, [("model.name", "pop"), ("name", "demo-pop")])
    return [ExperimentConfig.model_validate(raw), ExperimentConfig.model_validate(pop)]


def cmd_demo(args: argparse.Namespace) -> int:
    from seqrec.data.synthetic import synthetic_optimal_recall
    from seqrec.experiment import format_table, run

    configs = demo_configs(
        sessions=args.sessions, items=args.items, epochs=args.epochs, seed=args.seed
    )
    keep = args.out is not None
    root = Path(args.out) if keep else Path(tempfile.mkdtemp(prefix="seqrec-demo-"))
    try:
        rows = []
        results = {}
        for cfg in configs:
            label = "GRU4Rec" if cfg.model.name == "gru4rec" else "popularity"
            _note(f"demo: training {label} ...")
            res = run(
                cfg, root / cfg.model.name, progress=_progress(args), overwrite=args.overwrite
            )
            rep = res.reports["test"]
            results[cfg.model.name] = res.metrics
            rows.append(
                [
                    label,
                    rep.metrics["recall@20"],
                    rep.metrics["mrr@20"],
                    res.metrics["train"]["seconds"],
                ]
            )
        best = synthetic_optimal_recall(args.items, 0.9, 20)
        rows.append(["oracle (expected)", best, None, None])
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        _print(json.dumps(results, indent=2))
        return 0
    n_q = next(iter(results.values()))["test"]["n_queries"]
    _print(
        f"seqrec demo: {args.sessions} synthetic sessions over {args.items} items "
        f"(next item = planted successor with p=0.9); test on the last 6 days ({n_q} next-item queries)"
    )
    _print(format_table(["model", "Recall@20", "MRR@20", "train s"], rows))
    if keep:
        _print(f"(run directories: {root / 'gru4rec'}, {root / 'pop'})")
    return 0


# ------------------------------------------------------------------------ evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqrec.experiment import (
        EvalConfig,
        ExperimentConfig,
        apply_overrides,
        load_experiment,
        metrics_table,
        prepare_data,
        read_data,
    )

    rec = _load_model(args.model_dir)
    cfg: ExperimentConfig | None = None
    data_cfg = None
    if args.data is not None and _is_experiment_file(args.data):
        cfg = load_experiment(args.data, args.set or ())
    else:
        cfg_path = Path(args.experiment) if args.experiment else _run_config_path(args.model_dir)
        if cfg_path is not None:
            cfg = load_experiment(cfg_path, args.set or ())
        elif args.set:
            raise ConfigError(
                "--set needs an experiment: pass --experiment FILE or a run directory"
            )
        if args.data is not None:
            data_cfg = _data_config(args.data, data_dir=args.data_dir, fmt=args.format)
            if cfg is not None:
                raw = apply_overrides(
                    cfg.to_dict(), [("data", data_cfg.model_dump(exclude_none=True))]
                )
                cfg = ExperimentConfig.model_validate(raw)
    if cfg is not None:
        data_cfg = cfg.data
    ev = cfg.eval if cfg is not None else EvalConfig()
    candidates: Any = ev.candidates
    if args.candidates is not None:
        try:
            candidates = "full" if args.candidates == "full" else int(args.candidates)
        except ValueError:
            raise ConfigError(
                f"--candidates must be 'full' or a number, got {args.candidates!r}"
            ) from None
    if args.split == "all":
        if data_cfg is None:
            raise ConfigError("--split all needs DATA (a dataset name or an event file)")
        frame = read_data(data_cfg)
        protocol_split: Any = {
            "method": "none",
            "targets": "every event but the first of each session",
        }
    else:
        if cfg is None:
            raise ConfigError(
                f"{args.model_dir} has no config.resolved.toml saying how to split the data: "
                "pass --experiment FILE, an experiment file as DATA, or --split all"
            )
        split, _ = prepare_data(cfg)
        frame = split.valid if args.split == "valid" else split.test
        if frame is None:
            raise DataError(f"the split of {cfg.name!r} has no {args.split} part")
        protocol_split = split.protocol
    report = rec.evaluate(
        frame,
        metrics=args.metrics or ev.metrics,
        ties=args.ties or ev.ties,
        exclude_seen=ev.exclude_seen if args.exclude_seen is None else args.exclude_seen,
        candidates=candidates,
        split=args.split,
        progress=_progress(args),
    )
    report.protocol["data_split"] = protocol_split
    if args.json:
        _print(json.dumps(report.to_dict(), indent=2, default=str))
        return 0
    label = args.data or (data_cfg.dataset or data_cfg.path if data_cfg is not None else "?")
    _print(
        f"model: {_artifact_dir(args.model_dir)} ({rec.model.name}); data: {label}, part: {args.split}"
    )
    dropped = report.protocol.get("unknown_events_dropped")
    if dropped:
        _note(f"seqrec: {dropped} event(s) with items unknown to the model were dropped")
    _print(metrics_table({args.split: report}))
    return 0


# ----------------------------------------------------------------------- recommend
def _typed_ids(tokens: Sequence[str], vocab: Any) -> list[Any]:
    """CLI tokens -> ids of the vocabulary's type (non-integers stay strings: unknown)."""
    if vocab.ids.dtype.kind == "U":
        return list(tokens)
    out: list[Any] = []
    for t in tokens:
        try:
            out.append(int(t))
        except ValueError:
            out.append(t)
    return out


def cmd_recommend(args: argparse.Namespace) -> int:
    if args.items is None and args.input is None:
        raise ConfigError("give --items ID ... (one session) or --input FILE --output FILE (batch)")
    if args.items is not None and args.input is not None:
        raise ConfigError("--items and --input are exclusive: one session, or a file of sessions")
    if args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    rec = _load_model(args.model_dir)
    if args.input is not None:
        if args.output is None:
            raise ConfigError("--input needs --output FILE (.csv, .tsv or .parquet)")
        stats = recommend_file(
            rec,
            args.input,
            args.output,
            k=args.k,
            exclude_seen=args.exclude_seen,
            session_col=args.session_col,
            item_col=args.item_col,
            time_col=args.time_col,
            batch_size=args.batch_size,
            unknown=args.unknown,
            presorted=args.sorted,
        )
        _note(
            f"seqrec: wrote {stats['rows']:,} rows for {stats['sessions']:,} sessions to {args.output} "
            f"({stats['events']:,} events read; {stats['unknown_events']:,} with unknown items dropped; "
            f"{stats['empty_sessions']:,} sessions had no known item)"
        )
        return 0
    ids = _typed_ids(args.items, rec.vocab_)
    known = _known(ids, rec.vocab_)
    n_unknown = int((~known).sum())
    if n_unknown and args.unknown == "error":
        bad = [i for i, ok in zip(ids, known, strict=True) if not ok]
        raise UnknownItemError(f"{n_unknown} item id(s) not known to the model: {bad[:10]}")
    if n_unknown:
        _note(
            f"seqrec: dropped {n_unknown} unknown item id(s): {[i for i, ok in zip(ids, known, strict=True) if not ok][:10]}"
        )
    session = [i for i, ok in zip(ids, known, strict=True) if ok]
    out = rec.recommend(session, k=args.k, exclude_seen=args.exclude_seen)
    if args.json:
        _print(json.dumps(out.to_dicts(), default=str))
        return 0
    from seqrec.experiment import format_table

    rows = [
        [str(r), str(i), f"{s:.4f}"]
        for r, i, s in out.select("rank", Columns.item, "score").iter_rows()
    ]
    _print(format_table(["rank", "item_id", "score"], rows))
    return 0


def _common() -> argparse.ArgumentParser:
    """-v/--debug accepted after the subcommand too (defaults suppressed there)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log progress to stderr (-vv: debug)",
    )
    g.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    g.add_argument(
        "--threads",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="torch CPU threads (default: torch's choice; demo: 1)",
    )
    return p


def _add_data_source(p: argparse.ArgumentParser) -> None:
    """``--format`` and ``--data-dir``: how DATA (a file or registered dataset) is found and read."""
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "movielens", "session-log", "generic"],
        help="how to read an event file (default: auto)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="extra root searched for registered datasets")


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    from seqrec import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="seqrec",
        description="seqrec: sequential recommendation (session-based next item) — experiments, evaluation, recommendations.",
        epilog=_MAIN_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"seqrec {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log progress to stderr (-vv: debug)"
    )
    parser.add_argument(
        "--debug", action="store_true", default=False, help="show tracebacks on errors"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: torch's choice; demo: 1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common()

    # demo
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="train GRU4Rec and a popularity baseline on synthetic sessions (no download)",
        description="Run the embedded demo: synthetic sessions, GRU4Rec vs popularity.",
        epilog=_DEMO_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="keep the two run directories under DIR (default: a temporary folder)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing run directories under --out"
    )
    p.add_argument("--sessions", type=int, default=2000, help="synthetic sessions (default: 2000)")
    p.add_argument("--items", type=int, default=200, help="synthetic items (default: 200)")
    p.add_argument("--epochs", type=int, default=3, help="GRU4Rec training epochs (default: 3)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the data and the training (default: 0)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_progress(p)
    p.set_defaults(func=cmd_demo)

    # run / train
    p = sub.add_parser(
        "run",
        aliases=["train"],
        parents=[common],
        help="run an experiment file (train, evaluate, save) into a run directory",
        description="Run an experiment file: read, clean, split, train, evaluate, save.",
        epilog=_RUN_EPILOG,
        formatter_class=fmt,
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
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run directory (after the new run succeeded)",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="keep finished runs of the same config, run the others",
    )
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a table")
    _add_progress(p)
    p.set_defaults(func=cmd_run)

    # stats
    p = sub.add_parser(
        "stats",
        parents=[common],
        help="describe a dataset or event file (before/after cleaning)",
        description="Statistics of a registered dataset or an event file: events, sessions, items, lengths.",
        epilog=_STATS_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument(
        "data",
        metavar="DATASET_OR_PATH",
        help="registered dataset (ml-100k, ml-1m, yoochoose-100k, synthetic) or event file",
    )
    p.add_argument("--clean", action="store_true", help="also show the statistics after cleaning")
    p.add_argument(
        "--min-item-support",
        type=int,
        default=5,
        metavar="N",
        help="cleaning: drop items with fewer events (default: 5)",
    )
    p.add_argument(
        "--min-session-length",
        type=int,
        default=2,
        metavar="N",
        help="cleaning: drop shorter sessions (default: 2)",
    )
    _add_data_source(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_stats)

    # evaluate
    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate a saved model on a split of a dataset or event file",
        description="Evaluate a saved model (a run directory or its artifact/).",
        epilog=_EVAL_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="run directory or saved model directory")
    p.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help="experiment file, registered dataset or event file (default: the run's data)",
    )
    p.add_argument(
        "--split",
        choices=["test", "valid", "all"],
        default="test",
        help="part to evaluate (default: test)",
    )
    p.add_argument(
        "--experiment",
        metavar="FILE",
        help="experiment file giving preprocessing/split (default: the run's config.resolved.toml)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting of that experiment (repeatable)",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        metavar="M",
        help="metrics, e.g. recall@20 mrr@20 (default: the experiment's)",
    )
    p.add_argument(
        "--ties",
        choices=["conservative", "optimistic", "average"],
        help="tie policy (default: the experiment's, else conservative)",
    )
    p.add_argument(
        "--exclude-seen",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mask items seen earlier in the session",
    )
    p.add_argument("--candidates", metavar="full|N", help="'full' ranking or N sampled negatives")
    _add_data_source(p)
    p.add_argument(
        "--json", action="store_true", help="print the report (with its protocol) as JSON"
    )
    _add_progress(p)
    p.set_defaults(func=cmd_evaluate)

    # recommend
    p = sub.add_parser(
        "recommend",
        parents=[common],
        help="top-k next items for one session (--items) or a file of sessions (--input)",
        description="Recommend the next items with a saved model (a run directory or its artifact/).",
        epilog=_REC_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="run directory or saved model directory")
    p.add_argument(
        "--items", nargs="+", metavar="ID", help="the live session's item ids, oldest first"
    )
    p.add_argument(
        "--input", metavar="FILE", help="batch mode: sessions file (.csv, .tsv, .parquet)"
    )
    p.add_argument(
        "--output", metavar="FILE", help="batch mode: output file (.csv, .tsv, .parquet)"
    )
    p.add_argument("-k", type=int, default=20, help="items per session (default: 20)")
    p.add_argument(
        "--exclude-seen", action="store_true", help="never recommend items already in the session"
    )
    p.add_argument(
        "--unknown",
        choices=["drop", "error"],
        default="drop",
        help="items unknown to the model: drop and count (default) or fail",
    )
    p.add_argument(
        "--session-col",
        default=Columns.session,
        metavar="NAME",
        help="batch: session column (default: session_id)",
    )
    p.add_argument(
        "--item-col",
        default=Columns.item,
        metavar="NAME",
        help="batch: item column (default: item_id)",
    )
    p.add_argument(
        "--time-col",
        default=Columns.time,
        metavar="NAME",
        help="batch: time column ordering a session's events (default: timestamp; file order if absent)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        metavar="N",
        help="batch: sessions scored at once (default: 1024)",
    )
    p.add_argument(
        "--sorted",
        action="store_true",
        help="batch: rows of each session are contiguous and in time order; skip the sort and stream in constant memory",
    )
    p.add_argument("--json", action="store_true", help="single session: print JSON")
    p.set_defaults(func=cmd_recommend)
    return parser


# ---------------------------------------------------------------------------- main
def _setup_logging(verbose: int) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(
        logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    )
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("seqrec")
    root.addHandler(handler)
    return handler


def _message(e: BaseException) -> str:
    if isinstance(e, ValidationError):
        return f"invalid settings: {e}"
    if isinstance(e, FileNotFoundError) and not isinstance(e, SeqrecError):
        return f"file not found: {e.filename or e}"
    if isinstance(e, OSError) and not isinstance(e, SeqrecError):
        return f"{e.strerror or e}: {e.filename}" if e.filename else str(e)
    return str(e) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seqrec``; returns the exit status (0 ok, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _setup_logging(args.verbose)
    seqrec_logger = logging.getLogger("seqrec")
    old_level = seqrec_logger.level
    if args.verbose:
        seqrec_logger.setLevel(logging.DEBUG if args.verbose >= 2 else logging.INFO)
    old_threads = torch.get_num_threads()
    # tiny models (the demo) run fastest on one thread; several threads on a busy machine
    # can be 100x slower (OpenMP barriers), so the demo defaults to 1
    threads = args.threads if args.threads is not None else (1 if args.command == "demo" else None)
    try:
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        return int(args.func(args) or 0)
    except (SeqrecError, ValidationError, OSError, pl.exceptions.PolarsError) as e:
        if args.debug:
            raise
        _note(f"seqrec: error: {_message(e)}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        _note("seqrec: interrupted")
        return 130
    finally:
        seqrec_logger.removeHandler(handler)
        seqrec_logger.setLevel(old_level)
        if torch.get_num_threads() != old_threads:
            torch.set_num_threads(old_threads)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["build_parser", "demo_configs", "main", "recommend_file"]
