"""Helpers of the fuzz suites (``tests/test_fuzz_*.py``): the hypothesis settings, a CLI
runner that fails on tracebacks, and a small saved model.

Every fuzz test asserts one of two outcomes for a malformed input: a ``SeqrecError`` (CLI:
exit status 2 and ``seqrec: error: <message>`` on stderr, a short message) or a result equal
to an independent computation. Any other exception fails the test.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, settings

from seqrec.cli import main

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # deterministic in CI: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
"""Settings of every fuzz property (bounded: a few seconds per test)."""

CORPUS = Path(__file__).parent / "data" / "fuzz"
"""The hand-made malformed files."""

MAX_MESSAGE = 2100
"""Longest error message the CLI may print (seqrec.cli.app caps at 2,000 characters)."""


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``seqrec ARGV`` in this process: (exit status, stdout, stderr). An exception other
    than SystemExit propagates (a traceback is a test failure)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(argv))
        except SystemExit as e:  # argparse usage errors
            rc = int(e.code) if isinstance(e.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def assert_cli_error(argv: Sequence[str], *needles: str) -> str:
    """``seqrec ARGV`` fails cleanly: exit 2, one ``seqrec: error:`` (or argparse usage)
    message naming each of ``needles`` (case-insensitive), no traceback, short."""
    rc, _, err = run_cli(argv)
    assert rc == 2, (argv, rc, err[-2000:])
    assert "Traceback" not in err, err
    assert "error:" in err, err
    assert len(err) < MAX_MESSAGE + 2000, len(err)  # usage text + capped message
    low = err.lower()
    for n in needles:
        assert n.lower() in low, (n, err)
    return err


def save_pop_model(path: Path, *, string_ids: bool = False) -> Path:
    """A popularity model fitted on synthetic sessions, saved at ``path``; items 1000..1029
    (or ``"i1000"``... with ``string_ids``)."""
    import polars as pl

    from seqrec.data.synthetic import synthetic_sessions
    from seqrec.models import MODELS
    from seqrec.recommender import Recommender

    df = synthetic_sessions(n_sessions=120, n_items=30, seed=1)
    if string_ids:
        df = df.with_columns(("i" + pl.col("item_id").cast(pl.String)).alias("item_id"))
    Recommender(MODELS["pop"].config()).fit(df).save(path)
    return path
