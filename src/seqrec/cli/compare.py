"""``seqrec compare``: a paired significance test between two finished runs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from seqrec.cli._common import FORMATTER, common_options, out

EPILOG = """\
RUN_A and RUN_B are finished run directories (seqrec run --out DIR) evaluated on the same
data under the same protocol; every run saves its per-query results (queries/<part>.parquet),
and the two runs' queries are aligned by their key (session and target position for next
item, user and basket for next basket), whatever order the models evaluated them in.
Printed: both means, the difference A - B, its paired-bootstrap interval (queries resampled
with replacement, the same for both runs), and the two-sided Wilcoxon signed-rank p-value
over the queries whose values differ (1 when none differs). Runs under different protocols
(data fingerprint, split, candidates, ties, ...) are an error naming what differs; so is a
run written before seqrec saved per-query results (run it again). The seeds of one config:
seqrec report tests them together (or seqrec.significance.paired_test with lists of runs).

examples:
  seqrec compare runs/gru4rec runs/pop --metric mrr@20
  seqrec compare runs/a runs/b --metric recall@20 --part valid --n-boot 10000 --json
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        parents=[common_options()],
        help="paired significance test between two runs (bootstrap CI, Wilcoxon p)",
        description="Is run A better than run B? A paired test over the evaluation queries.",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("run_a", metavar="RUN_A", help="a finished run directory")
    p.add_argument("run_b", metavar="RUN_B", help="another, on the same data and protocol")
    p.add_argument(
        "--metric", metavar="NAME", help="a per-query metric of the runs (default: A's first)"
    )
    p.add_argument(
        "--part", choices=["test", "valid"], default="test", help="evaluated part (default: test)"
    )
    p.add_argument(
        "--n-boot",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap resamples (default: 2000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    p.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        metavar="C",
        help="coverage of the interval (default: 0.95)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from seqrec.significance import paired_test

    res = paired_test(
        args.run_a,
        args.run_b,
        metric=args.metric,
        part=args.part,
        n_boot=args.n_boot,
        seed=args.seed,
        confidence=args.confidence,
    )
    if args.json:
        d = {
            k: v
            for k, v in vars(res).items()
            if k not in ("runs_a", "runs_b", "extra") and not k.startswith("_")
        }
        d["run_a"], d["run_b"] = str(res.runs_a[0]), str(res.runs_b[0])
        d["significant"] = res.significant
        out(json.dumps(d))
    else:
        out(res.text())
    return 0
