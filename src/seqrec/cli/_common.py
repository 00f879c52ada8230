"""Helpers shared by the subcommands: output, data arguments, model directories, options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from seqrec.exceptions import ConfigError, DataError

EXIT_ERROR = 2
"""Exit status of every error seqrec raises on purpose (and of usage errors)."""

FORMATTER = argparse.RawDescriptionHelpFormatter


def progress(args: argparse.Namespace) -> bool:
    """``--progress`` / ``--no-progress``, default: whether stderr is a terminal."""
    flag = getattr(args, "progress", None)
    return bool(sys.stderr.isatty()) if flag is None else bool(flag)


def out(text: str = "") -> None:
    """Print a result to stdout."""
    print(text, file=sys.stdout)


def note(text: str) -> None:
    """Print a note (or an error) to stderr."""
    print(text, file=sys.stderr)


def parse_columns(text: str | None) -> dict[str, str | int] | None:
    """``--columns session_id=SessionId,item_id=ItemId,timestamp=2`` -> a mapping (digits:
    0-based positions, for files without a header)."""
    if text is None:
        return None
    from seqrec.data.readers import CANONICAL_ORDER

    out: dict[str, str | int] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise ConfigError(
                f"--columns {text!r}: expected CANONICAL=NAME pairs separated by commas, e.g. "
                "session_id=SessionId,item_id=ItemId,timestamp=Time"
            )
        if key not in CANONICAL_ORDER:
            raise ConfigError(
                f"--columns: unknown canonical name {key!r}; use {', '.join(CANONICAL_ORDER)}"
            )
        out[key] = int(value) if value.isdigit() else value
    return out


def parse_sep(text: str | None) -> str | None:
    """``--sep``: a separator; ``tab``, ``\\t``, ``comma``, ``semicolon``, ``pipe``, ``space``
    by name too."""
    if text is None:
        return None
    names = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    sep = names.get(text.lower(), text)
    if not sep:
        raise ConfigError("--sep must not be empty (tab, comma, ';', '::', ...)")
    return sep


def data_config(
    arg: str,
    *,
    data_dir: str | None = None,
    fmt: str = "auto",
    columns: str | None = None,
    sep: str | None = None,
    time_unit: str | None = None,
) -> Any:
    """A DataConfig from a CLI argument: a registered dataset, 'synthetic' or a file (with
    ``--format``, ``--columns``, ``--sep``, ``--time-unit`` for a file)."""
    from seqrec.datasets import DATASETS
    from seqrec.experiment import SYNTHETIC, DataConfig

    file_opts = {
        "--columns": columns,
        "--sep": sep,
        "--time-unit": time_unit,
        "--format": None if fmt == "auto" else fmt,
    }
    if arg == SYNTHETIC or arg in DATASETS:
        given = [k for k, v in file_opts.items() if v is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)} apply to an event file, not to the registered dataset "
                f"{arg!r} (which has its own reader)"
            )
        return DataConfig(dataset=arg, data_dir=data_dir)
    p = Path(arg).expanduser()
    if not p.exists():
        raise DataError(
            f"{arg!r} is neither a registered dataset ({', '.join([*sorted(DATASETS), SYNTHETIC])}) "
            "nor an existing file"
        )
    return DataConfig(
        path=str(p),
        format=fmt,  # type: ignore[arg-type]
        columns=parse_columns(columns),
        sep=parse_sep(sep),
        time_unit=time_unit or "auto",  # type: ignore[arg-type]
    )


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`data_config` from parsed ``add_data_source`` options."""
    return {
        "data_dir": args.data_dir,
        "fmt": args.format,
        "columns": args.columns,
        "sep": args.sep,
        "time_unit": args.time_unit,
    }


def is_experiment_file(arg: str) -> bool:
    """Whether a DATA argument names an experiment file (by its suffix)."""
    return Path(arg).suffix.lower() in (".toml", ".yaml", ".yml")


def artifact_dir(model_dir: str) -> Path:
    """The saved model of a run directory (its ``artifact/``) or a model directory itself."""
    from seqrec.experiment import ARTIFACT_DIR

    p = Path(model_dir).expanduser()
    if not p.exists():
        raise DataError(f"model directory not found: {p}")
    return p / ARTIFACT_DIR if (p / ARTIFACT_DIR).is_dir() else p


def load_model(model_dir: str) -> Any:
    """The Recommender saved in a run or model directory."""
    from seqrec.recommender import Recommender

    return Recommender.load(artifact_dir(model_dir))


def common_options() -> argparse.ArgumentParser:
    """Parent parser: -v/--debug/--threads accepted after the subcommand too (defaults
    suppressed there, so the values given before the subcommand stay)."""
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
        help="torch CPU threads (default: 1 on machines with <= 2 cores and for the demo, else "
        "the cores not busy by the load average)",
    )
    return p


TIME_UNITS = ("auto", "s", "ms", "us", "ns", "datetime")


def add_data_source(p: argparse.ArgumentParser) -> None:
    """``--format``, ``--columns``, ``--sep``, ``--time-unit`` and ``--data-dir``: how DATA (a
    file or registered dataset) is found and read."""
    g = p.add_argument_group("reading an event file")
    g.add_argument(
        "--format",
        default="auto",
        choices=["auto", "movielens", "session-log", "generic", "item-lists"],
        help="how to read an event file (default: auto = MovieLens for u.data/ratings.dat, else "
        "generic; item-lists: one session per row with its items in one space-separated field)",
    )
    g.add_argument(
        "--columns",
        metavar="MAP",
        help="canonical=file column names, e.g. session_id=SessionId,item_id=ItemId,"
        "timestamp=Time (0-based positions for files without a header)",
    )
    g.add_argument(
        "--sep",
        metavar="SEP",
        help="field separator: tab, comma, ';', '::', ... (default: sniffed)",
    )
    g.add_argument(
        "--time-unit",
        choices=TIME_UNITS,
        default=None,
        help="timestamps: auto (default: seconds/ms/us/ns by magnitude, or ISO dates; the unit "
        "assumed is logged), s, ms, us, ns or datetime (ISO-8601 text)",
    )
    g.add_argument("--data-dir", metavar="DIR", help="extra root searched for registered datasets")


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``."""
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
