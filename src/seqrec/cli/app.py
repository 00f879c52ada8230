"""The ``seqrec`` parser, logging setup and the mapping of errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from seqrec.cli import compare, demo, evaluate, models, recommend, report, run, serve, stats
from seqrec.cli._common import EXIT_ERROR, FORMATTER, note
from seqrec.cli.run import Terminated, sigterm_raises
from seqrec.exceptions import ConfigError, SeqrecError

EPILOG = """\
examples:
  seqrec demo                                   # synthetic data, GRU4Rec vs popularity, <1 min
  seqrec stats ml-100k --clean                  # dataset statistics before/after cleaning
  seqrec run configs/ml100k_gru4rec.toml --set train.epochs=3
  seqrec run configs/ml100k_notebook_grid.toml --out runs/grid --resume   # a grid, resumable
  seqrec report runs/grid --out reports/grid    # Markdown + HTML: protocol, table, plots
  seqrec compare runs/gru4rec runs/pop --metric mrr@20   # paired test: CI, p-value
  seqrec evaluate runs/ml100k_gru4rec --split test
  seqrec recommend runs/ml100k_gru4rec --items 50 181 -k 10
  seqrec recommend runs/ml100k_gru4rec --input sessions.csv --output recs.csv
  seqrec serve runs/ml100k_gru4rec --titles ../shared/data/ml-100k/ml-100k.item  # HTTP + demo page
  seqrec models                                 # the registered models; 'seqrec models sasrec'

Registered datasets are looked up in $SEQREC_DATA and the user cache (never downloaded
unless an experiment sets data.download = true). Run 'seqrec COMMAND --help' for details.
"""

SUBCOMMANDS = (demo, run, report, compare, stats, evaluate, recommend, serve, models)
"""The subcommand modules, in the order ``seqrec --help`` lists them; each has
``add_parser(subparsers)`` registering its parser with ``func`` = its handler."""


def build_parser() -> argparse.ArgumentParser:
    """The ``seqrec`` argument parser with every subcommand."""
    from seqrec import __version__

    parser = argparse.ArgumentParser(
        prog="seqrec",
        description="seqrec: sequential recommendation (session-based next item) — experiments, evaluation, recommendations.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
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
        help="torch CPU threads (default: 1 on machines with <= 2 cores and for the demo, "
        "else the cores not busy by the load average)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def _setup_logging(verbose: int) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(
        logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    )
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("seqrec")
    root.addHandler(handler)
    return handler


MAX_MESSAGE = 2000
"""At most this many characters of an error message are printed (a message quoting a
line of a one-line JSON file was once 12 MB)."""


def _message(e: BaseException) -> str:
    if isinstance(e, ValidationError):
        text = f"invalid settings: {e}"
    elif isinstance(e, FileNotFoundError) and not isinstance(e, SeqrecError):
        text = f"file not found: {e.filename or e}"
    elif isinstance(e, OSError) and not isinstance(e, SeqrecError):
        text = f"{e.strerror or e}: {e.filename}" if e.filename else str(e)
    else:
        text = str(e) or type(e).__name__
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 40] + f" ... ({len(text):,} characters in all)"
    return text


def default_threads(command: str) -> int | None:
    """torch CPU threads when ``--threads`` is not given.

    1 for the demo and on machines with at most 2 cores; on larger machines the cores
    not busy by the 1-minute load average (at least 1). OpenMP threads that find no free
    core spin at every barrier: on a 2-core machine shared with other processes,
    ``seqrec run configs/ml100k_gru4rec.toml`` took 13 s with 1 thread and more than 300 s
    with 2 (README, Performance notes).
    """
    import os

    cores = os.cpu_count() or 1
    if command == "demo" or cores <= 2:
        return 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        return None
    return max(1, min(cores, int(cores - load)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``seqrec``; returns the exit status (0 ok, 2 error, 130 interrupted).

    Every error seqrec raises on purpose (and bad configs, missing files, polars errors) is
    printed as ``seqrec: error: <message>`` without a traceback unless ``--debug``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _setup_logging(args.verbose)
    seqrec_logger = logging.getLogger("seqrec")
    old_level = seqrec_logger.level
    if args.verbose:
        seqrec_logger.setLevel(logging.DEBUG if args.verbose >= 2 else logging.INFO)
    old_threads = None
    needs_torch = args.command not in ("models",) and not getattr(args, "help_only", False)
    threads = args.threads if args.threads is not None else default_threads(args.command)
    # `run` turns SIGTERM into a clean stop from here on, while torch is imported too (a
    # second or more under load), not only once the run has started
    guard = sigterm_raises() if args.command in ("run", "train") else contextlib.nullcontext()
    try:
        with guard:
            if args.threads is not None and args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            if threads is not None and needs_torch:
                import torch

                old_threads = torch.get_num_threads()
                torch.set_num_threads(threads)
            return int(args.func(args) or 0)
    except (SeqrecError, ValidationError, OSError) as e:
        if args.debug:
            raise
        note(f"seqrec: error: {_message(e)}")
        return EXIT_ERROR
    except Exception as e:
        import polars as pl

        if args.debug or not isinstance(e, pl.exceptions.PolarsError):
            raise
        note(f"seqrec: error: {_message(e)}")
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        if isinstance(e, Terminated):  # SIGTERM before the run itself started
            note("seqrec: terminated (SIGTERM)")
            return 128 + signal.SIGTERM
        note("seqrec: interrupted")
        return 130
    finally:
        seqrec_logger.removeHandler(handler)
        seqrec_logger.setLevel(old_level)
        if old_threads is not None:
            import torch

            if torch.get_num_threads() != old_threads:
                torch.set_num_threads(old_threads)
