"""``seqrec report``: a Markdown + self-contained HTML report over finished runs."""

from __future__ import annotations

import argparse
from typing import Any

from seqrec.cli._common import FORMATTER, common_options, out

EPILOG = """\
RUNS are run directories (seqrec run --out DIR) or grid directories holding them; failed
and unfinished runs are skipped. The report states the protocol at the top (dataset and
its fingerprint, split, candidates, ties, masking, cutoffs, from each run's metrics.json),
then a table of every point (the seeds of one config) best first, with the varied
parameters as columns and mean ± std over seeds, and PNG plots: learning curves, the
metric against each varied parameter, models and settings as bars, the metric against
training time. report.html embeds the images (one file to send); report.md links the PNGs
beside it. Under each table a significance table tests the best point against the best
point of each other model and the next best points (at most 10): the paired difference of
the main metric over the queries of the part (a point's seeds averaged per query), its 95%
paired-bootstrap interval and the Wilcoxon signed-rank p-value (see seqrec compare). Runs
evaluated under different protocols get a warning naming what differs and one protocol
section, table and significance table each (tests only within one protocol). Needs
matplotlib: pip install 'seqrec[report]'.

examples:
  seqrec run configs/ml100k_notebook_grid.toml --out runs/grid
  seqrec report runs/grid --out reports/grid
  seqrec report runs/grid runs/pop --metric mrr@20 --part valid --out reports/compare
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        parents=[common_options()],
        help="a Markdown + HTML report (table, plots) over finished runs",
        description="Compare finished runs: protocol, table of runs, plots.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run or grid directories")
    p.add_argument(
        "--out", metavar="DIR", default="report", help="output directory (default: report)"
    )
    p.add_argument("--metric", metavar="NAME", help="main metric (default: the runs' first)")
    p.add_argument("--part", choices=["test", "valid"], help="evaluated part (default: test)")
    p.add_argument("--title", metavar="TEXT", help="the report's title")
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="no effect, kept for older scripts: runs under different protocols are always "
        "reported, one section per protocol",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from seqrec.report import build

    res = build(
        args.runs,
        args.out,
        metric=args.metric,
        part=args.part,
        allow_mixed=args.allow_mixed,
        title=args.title,
    )
    out(f"report: {res.n_runs} runs, {res.n_points} points, by {res.part} {res.metric}")
    if res.significance:
        n_sig = sum(t.significant for t in res.significance)
        out(
            f"  significance: {len(res.significance)} paired test(s), {n_sig} with a 95% "
            "interval excluding 0"
        )
    out(f"  {res.markdown}")
    out(f"  {res.html} (self-contained)")
    for p in res.images:
        out(f"  {p}")
    return 0
