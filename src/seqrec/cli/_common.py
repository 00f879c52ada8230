"""Helpers shared by the subcommands: output, data arguments, model directories, options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from seqrec.exceptions import DataError

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


def data_config(arg: str, *, data_dir: str | None = None, fmt: str = "auto") -> Any:
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
        help="torch CPU threads (default: torch's choice; demo: 1)",
    )
    return p


def add_data_source(p: argparse.ArgumentParser) -> None:
    """``--format`` and ``--data-dir``: how DATA (a file or registered dataset) is found and read."""
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "movielens", "session-log", "generic"],
        help="how to read an event file (default: auto)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="extra root searched for registered datasets")


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``."""
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
