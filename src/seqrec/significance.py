"""Paired significance tests between runs, over their per-query results.

Every run writes the per-query values of each evaluated part to
``queries/<part>.parquet`` (:data:`~seqrec.experiment.files.QUERIES_DIR`,
:attr:`seqrec.evaluate.EvalReport.queries`): the query key (:data:`seqrec.evaluate.QUERY_KEYS`:
``sequence`` and ``position`` for next item, ``sequence`` and ``basket`` for next basket), the
target's ``rank`` (next item) and the value of each of the run's metrics for that query.
:func:`paired_test` aligns two runs (or two sets of seeds) by that key, whatever order their
models scored the queries in (GRU4Rec replays sessions in parallel, the others score prefixes
in data order), and tests the per-query difference ``a - b``:

* the mean difference (the difference of the two metric values);
* a paired bootstrap interval: queries resampled with replacement ``n_boot`` times (the same
  queries for both runs, so the pairing is kept), the percentile interval of the resampled
  mean differences;
* the two-sided Wilcoxon signed-rank p-value (:func:`scipy.stats.wilcoxon`, ``zero_method=
  "wilcox"``: queries with no difference are left out, as usual; when every difference is 0
  the p-value is 1; differences are rounded to :data:`WILCOXON_DECIMALS` decimals first,
  below the resolution of the float32 values, so that equal differences tie).

Several runs on one side (the seeds of one config) are averaged per query first: the test is
then over queries of the seed-averaged models (the spread over seeds is what a report's
t-interval shows; this test answers whether the difference holds over the test queries).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from seqrec.exceptions import ConfigError, DataError

BOOTSTRAP_BLOCK = 1 << 22
"""Resampled query indices drawn at a time (memory bound of the vectorised bootstrap)."""

NOT_PER_QUERY = ("f1_micro", "f1_macro")
"""Metrics pooled over all queries (or items): they have no per-query value."""

RunsArg = str | Path | Any | Sequence[str | Path | Any]


@dataclass
class PairedTest:
    """The result of :func:`paired_test` (``difference = mean_a - mean_b``)."""

    metric: str
    part: str
    runs_a: list[Path]
    runs_b: list[Path]
    n: int
    """Queries compared (both runs have a value)."""
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    """Two-sided Wilcoxon signed-rank p-value (1.0 when no query differs)."""
    n_differing: int
    """Queries whose values differ (the ones the Wilcoxon test ranks)."""
    n_boot: int
    confidence: float
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        """Whether the bootstrap interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def text(self) -> str:
        """A readable summary."""
        pct = f"{100 * self.confidence:g}%"

        def side(runs: list[Path]) -> str:
            return runs[0].name + (f" (+{len(runs) - 1} seeds)" if len(runs) > 1 else "")

        return "\n".join(
            [
                f"{self.part} {self.metric}: {side(self.runs_a)} {self.mean_a:.4f} vs "
                f"{side(self.runs_b)} {self.mean_b:.4f}",
                f"difference {self.difference:+.4f}, {pct} paired-bootstrap CI "
                f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}] ({self.n_boot} resamples, seed "
                f"{self.seed})",
                f"Wilcoxon signed-rank p = {_fmt_p(self.p_value)} ({self.n} queries, "
                f"{self.n_differing} with a difference)",
            ]
        )


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def read_queries(run_dir: str | Path, part: str = "test") -> pl.DataFrame:
    """The per-query results of one part of a finished run (``queries/<part>.parquet``).

    Raises
    ------
    DataError
        The run has no such file (written before seqrec saved per-query results, or the
        part was not evaluated): the message says to run it again.
    """
    from seqrec.experiment.files import QUERIES_DIR

    path = Path(run_dir) / QUERIES_DIR / f"{part}.parquet"
    if not path.is_file():
        raise DataError(
            f"{run_dir} has no per-query results for {part!r} ({QUERIES_DIR}/{part}.parquet): "
            "the run was written by a seqrec version that did not save them, or did not "
            "evaluate that part; run it again (seqrec run --overwrite) to compare it"
        )
    return pl.read_parquet(path)


def _dirs(runs: RunsArg) -> list[Path]:
    if isinstance(runs, str | Path) or hasattr(runs, "out_dir"):
        runs = [runs]
    out = [Path(getattr(r, "out_dir", r)) for r in runs]  # type: ignore[union-attr]
    if not out:
        raise ConfigError("paired_test needs at least one run on each side")
    return out


def _protocol(run_dir: Path, part: str) -> dict[str, Any]:
    import json

    from seqrec.experiment import METRICS_FILE, RESOLVED_CONFIG, load_experiment
    from seqrec.report import protocol_of

    if not (run_dir / METRICS_FILE).is_file():
        raise DataError(f"{run_dir} is not a finished seqrec run (no {METRICS_FILE})")
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    if part not in metrics:
        raise DataError(f"{run_dir} has no {part!r} evaluation")
    return protocol_of(metrics, load_experiment(run_dir / RESOLVED_CONFIG), part)


def _keys_of(frame: pl.DataFrame) -> list[str]:
    from seqrec.evaluate import QUERY_KEYS

    for keys in QUERY_KEYS.values():
        if set(keys) <= set(frame.columns):
            return list(keys)
    raise DataError(f"per-query results without key columns (have {frame.columns})")


def _side_values(
    dirs: Sequence[Path], part: str, metric: str, cache: dict[Path, pl.DataFrame] | None
) -> tuple[pl.DataFrame, list[str]]:
    """The per-query metric of one side, keys sorted, averaged over its runs (seeds)."""
    frames = []
    for d in dirs:
        f = cache.get(d) if cache is not None else None
        if f is None:
            f = read_queries(d, part)
            if cache is not None:
                cache[d] = f
        frames.append(f)
    keys = _keys_of(frames[0])
    for d, f in zip(dirs, frames, strict=True):
        if metric not in f.columns:
            have = [c for c in f.columns if c not in (*keys, "rank")]
            hint = (
                f"{metric} is pooled over all queries and has no per-query value"
                + ("; f1_user is the per-query F1 of the predicted set" if "f1" in metric else "")
                if metric in NOT_PER_QUERY
                else f"the run did not compute {metric}"
            )
            raise ConfigError(f"{d}: {hint}; its per-query metrics are {', '.join(have)}")
    base = frames[0].select(keys).sort(keys)
    cols = []
    for i, (d, f) in enumerate(zip(dirs, frames, strict=True)):
        f = f.select([*keys, metric]).sort(keys)
        if f.height != base.height or not f.select(keys).equals(base):
            raise DataError(
                f"the queries of {dirs[0]} and {d} do not align ({base.height} and {f.height} "
                "queries, different keys): the runs evaluated different data"
            )
        cols.append(f.get_column(metric).cast(pl.Float64).alias(f"_v{i}"))
    return base.with_columns(cols), keys


def _bootstrap(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` means of ``d`` resampled with replacement (vectorised, in blocks)."""
    n = len(d)
    per = max(1, BOOTSTRAP_BLOCK // max(n, 1))
    out = np.empty(n_boot)
    for a in range(0, n_boot, per):  # blocks of resamples; each block one numpy call
        b = min(n_boot, a + per)
        idx = rng.integers(0, n, size=(b - a, n), dtype=np.int32 if n < 2**31 else np.int64)
        out[a:b] = d[idx].mean(axis=1)
    return out


WILCOXON_DECIMALS = 6
"""Differences are rounded to this many decimals before the Wilcoxon test: the per-query
values are stored as float32 (about 7 significant digits), so without rounding two equal
differences could differ in their last bits and break a tie the data does not have."""


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences ``d`` (rounded to
    :data:`WILCOXON_DECIMALS`; zeros left out; 1.0 when every difference is 0, NaN for an
    empty ``d``)."""
    if len(d) == 0:
        return math.nan
    d = np.round(np.asarray(d, dtype=np.float64), WILCOXON_DECIMALS)
    if not np.any(d != 0):
        return 1.0
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():  # ties and zeros: scipy says it uses the normal approx.
        warnings.simplefilter("ignore")
        return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_test(
    runs_a: RunsArg,
    runs_b: RunsArg,
    *,
    metric: str | None = None,
    part: str = "test",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    _cache: dict[Path, pl.DataFrame] | None = None,
) -> PairedTest:
    """Paired test of ``metric`` between two runs over the queries of ``part``.

    Parameters
    ----------
    runs_a, runs_b
        A finished run directory (or :class:`~seqrec.experiment.RunResult`), or several
        (the seeds of one config: their per-query values are averaged first).
    metric
        A metric of the runs with per-query values (``mrr@20``, ``recall@10``, ...;
        default: the first metric of the first run of ``runs_a``).
    part
        ``"test"`` or ``"valid"``.
    n_boot, seed, confidence
        Bootstrap resamples, their seed, and the interval's coverage.

    Returns
    -------
    PairedTest
        ``difference = mean_a - mean_b`` with its bootstrap interval, the Wilcoxon p-value
        and the number of queries.

    Raises
    ------
    ConfigError
        The runs were evaluated under different protocols (the message names the differing
        keys: data fingerprint, split, candidates, ties, ...), or ``metric`` has no
        per-query value.
    DataError
        A run without per-query results (run it again), or queries that do not align.

    Examples
    --------
    >>> from seqrec.significance import paired_test  # doctest: +SKIP
    >>> print(paired_test("runs/gru4rec", "runs/pop", metric="mrr@20").text())  # doctest: +SKIP
    """
    from seqrec.report import _protocol_difference

    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    a, b = _dirs(runs_a), _dirs(runs_b)
    protos = [(d, _protocol(d, part)) for d in [*a, *b]]
    for d, p in protos[1:]:
        diff = _protocol_difference(protos[0][1], p)
        if diff:
            raise ConfigError(
                f"{protos[0][0]} and {d} were evaluated under different protocols (they "
                f"differ in {', '.join(diff)}); a paired test needs the same data, split "
                "and protocol"
            )
    if metric is None:
        import json

        from seqrec.experiment import METRICS_FILE

        metric = next(iter(json.loads((a[0] / METRICS_FILE).read_text())[part]["metrics"]))
    va, keys = _side_values(a, part, metric, _cache)
    vb, keys_b = _side_values(b, part, metric, _cache)
    if keys != keys_b or va.height != vb.height or not va.select(keys).equals(vb.select(keys)):
        raise DataError(
            f"the queries of {a[0]} ({va.height}) and {b[0]} ({vb.height}) do not align by "
            f"({', '.join(keys)}): the runs evaluated different data"
        )
    xa = va.select(pl.mean_horizontal(pl.exclude(keys))).to_series().to_numpy()
    xb = vb.select(pl.mean_horizontal(pl.exclude(keys))).to_series().to_numpy()
    ok = ~(np.isnan(xa) | np.isnan(xb))  # repeat/explore recall: only queries that have it
    xa, xb = xa[ok], xb[ok]
    d = xa - xb
    n = len(d)
    if n == 0:
        raise DataError(f"no query of {part!r} has a {metric} value in both runs")
    boot = _bootstrap(d, n_boot, np.random.default_rng(seed))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return PairedTest(
        metric=metric,
        part=part,
        runs_a=a,
        runs_b=b,
        n=n,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        difference=float(d.mean()),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=wilcoxon_p(d),
        n_differing=int(np.count_nonzero(np.round(d, WILCOXON_DECIMALS))),
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )


__all__ = ["NOT_PER_QUERY", "PairedTest", "paired_test", "read_queries", "wilcoxon_p"]
