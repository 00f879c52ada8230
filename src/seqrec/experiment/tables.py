"""Plain-text tables a person can read: :func:`format_table` and :func:`metrics_table`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from seqrec.evaluate import EvalReport


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned.

    Non-string cells are formatted: None as ``-``, floats with four decimals.
    """
    cells = [[str(h) for h in headers]] + [
        [c if isinstance(c, str) else _fmt(c) for c in r] for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def metrics_table(reports: Mapping[str, EvalReport]) -> str:
    """A readable table of several reports (rows: metrics; columns: the report names),
    followed by the protocol of the first (candidates, ties, masking)."""
    if not reports:
        return "(nothing evaluated)"
    names = list(reports)
    metric_names: list[str] = []
    for r in reports.values():
        metric_names += [m for m in r.metrics if m not in metric_names]
    rows = [[m, *[_fmt(reports[n].metrics.get(m)) for n in names]] for m in metric_names]
    rows.append(["queries", *[str(reports[n].n_queries) for n in names]])
    table = format_table(["metric", *names], rows)
    first = next(iter(reports.values())).protocol
    return (
        table
        + f"\n({first.get('candidates')} ranking, ties={first.get('ties')}, exclude_seen={first.get('exclude_seen')})"
    )


__all__ = ["format_table", "metrics_table"]
