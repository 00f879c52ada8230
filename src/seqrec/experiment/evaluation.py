"""Evaluating a fitted recommender as an experiment's ``[eval]`` section says, for either task.

For next-basket models the options of :func:`seqrec.evaluate.evaluate_baskets` come from
``[eval]``; ``threshold = "valid"`` evaluates the validation part once with every threshold of
:data:`~seqrec.evaluate.THRESHOLD_GRID`, keeps the one with the best F1 micro there, and uses it
for every part (recorded in each report's protocol as ``threshold_chosen_on_valid``).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from seqrec.evaluate import THRESHOLD_GRID, EvalReport
from seqrec.exceptions import ConfigError
from seqrec.experiment.config import EvalConfig


def _is_basket(rec: Any) -> bool:
    return rec.spec.task == "next-basket"


def choose_threshold(rec: Any, valid: pl.DataFrame | None, ev: EvalConfig) -> float | None:
    """The decision threshold of a next-basket run (None for next-item models)."""
    if not _is_basket(rec):
        return None
    if ev.threshold != "valid":
        return float(ev.threshold)
    if valid is None:
        raise ConfigError(
            "eval.threshold = 'valid' needs a validation part; enable it in [split] "
            "(valid = true) or give a number"
        )
    opts = {k: v for k, v in ev.basket_options().items() if k != "threshold"}
    rep = rec.evaluate(valid, metrics=["f1_micro"], thresholds=list(THRESHOLD_GRID), **opts)
    best = max(rep.extra["f1_by_threshold"], key=lambda r: (r["f1_micro"], -r["threshold"]))
    return float(best["threshold"])


def evaluate_part(
    rec: Any,
    frame: pl.DataFrame,
    ev: EvalConfig,
    *,
    part: str,
    threshold: float | None = None,
    progress: bool = False,
    metrics: list[str] | None = None,
    per_query: bool = False,
) -> EvalReport:
    """One part evaluated with the experiment's settings (``threshold`` from
    :func:`choose_threshold` for next-basket models); ``per_query`` also returns each
    query's values (``report.queries``)."""
    kwargs: dict[str, Any] = {}
    if _is_basket(rec):
        kwargs = ev.basket_options()
        if threshold is not None:
            kwargs["threshold"] = threshold
    else:
        kwargs = {"ties": ev.ties, "candidates": ev.candidates}
    report = rec.evaluate(
        frame,
        metrics=metrics or ev.metrics,
        exclude_seen=ev.exclude_seen,
        split=part,
        progress=progress,
        per_query=per_query,
        **kwargs,
    )
    if _is_basket(rec) and ev.threshold == "valid":
        report.protocol["threshold_chosen_on_valid"] = threshold
    return report


__all__ = ["choose_threshold", "evaluate_part"]
