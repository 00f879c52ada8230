"""Named variants (``[search] method = "variants"``): one change at a time around a base,
as the reference notebooks' experiments; crossing with a grid; their errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from _configs import write_experiment
from seqrec.exceptions import ConfigError
from seqrec.experiment import grid, point_id, run_grid

VARIANTS = """\
[search]
method = "variants"
[search.variants]
baseline = {}
hidden_16 = {"model.layers" = [16]}
lr = {train = {learning_rate = 0.05}}
stop = {"objective.last_batch" = "stop"}
"""


pytestmark = pytest.mark.usefixtures("one_thread")


def test_variants_are_named_points_of_one_change_each(tmp_path: Path) -> None:
    cfgs = grid(write_experiment(tmp_path, VARIANTS))
    assert [c.variant for c in cfgs] == ["baseline", "hidden_16", "lr", "stop"]
    base, hidden, lr, stop = cfgs
    assert (hidden.model.layers, lr.train.learning_rate) == ([16], 0.05)
    assert stop.objective is not None and stop.objective.last_batch == "stop"
    assert base.model.layers == [8] and base.objective.last_batch == "shrink"
    assert all(c.search is None and not c.grid for c in cfgs)
    # the name is a label: the point id is the resolved config's
    assert len({point_id(c) for c in cfgs}) == 4
    assert point_id(base) == point_id(base.model_copy(update={"variant": "other"}))


def test_variants_run_with_a_variant_column_and_resume(tmp_path: Path) -> None:
    cfgs = grid(write_experiment(tmp_path, VARIANTS))
    res = run_grid(cfgs, tmp_path / "runs", progress=False)
    rows = list(csv.DictReader((tmp_path / "runs" / "summary.csv").open()))
    assert [r["variant"] for r in rows] == ["baseline", "hidden_16", "lr", "stop"]
    assert {r["status"] for r in rows} == {"new"}
    # the variant that stops at the first unrefillable slot trains on fewer events
    ev = {r.config.variant: r.metrics["train"]["events"] for r in res}
    assert ev["stop"] < ev["baseline"] == ev["lr"]
    again = run_grid(cfgs, tmp_path / "runs", progress=False, resume=True)
    assert {r.status for r in again} == {"finished"}  # reused, not rerun
    assert [r.metrics for r in again] == [r.metrics for r in res]


def test_variants_cross_a_grid(tmp_path: Path) -> None:
    extra = VARIANTS + '[grid]\n"train.epochs" = [1, 2]\n'
    cfgs = grid(write_experiment(tmp_path, extra))
    assert [(c.variant, c.train.epochs) for c in cfgs][:3] == [
        ("baseline", 1),
        ("baseline", 2),
        ("hidden_16", 1),
    ]
    assert len(cfgs) == 8


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[search]\nmethod = "variants"\n', "needs named points"),
        ('[search]\nmethod = "variants"\n[search.variants]\n', "needs named points"),
        ("[search]\n[search.variants]\na = {}\n", "needs search.method = 'variants'"),
        ('[search]\nmethod = "variants"\nn = 3\n[search.variants]\na = {}\n', "search.n"),
        ('[search]\nmethod = "variants"\n[search.variants]\n"a b" = {}\n', "variant names"),
        (
            '[search]\nmethod = "variants"\n[search.variants]\na = {"model.nope" = 1}\n',
            "nope",
        ),
        (
            '[search]\nmethod = "variants"\n[search.variants]\na = {"model.layers" = [4]}\n'
            '[grid]\n"model.layers" = [[8], [16]]\n',
            "both set",
        ),
    ],
)
def test_bad_variants_are_errors_before_anything_runs(
    tmp_path: Path, extra: str, needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        grid(write_experiment(tmp_path, extra))


def test_jobs_auto_is_one_worker_per_thread_on_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seqrec.cli.run import parse_jobs
    from seqrec.experiment.runs import MAX_AUTO_JOBS, auto_jobs

    cfgs = grid(write_experiment(tmp_path, VARIANTS))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert auto_jobs(cfgs) == 2
    assert auto_jobs(cfgs[:1]) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    assert auto_jobs(cfgs) == len(cfgs) <= MAX_AUTO_JOBS
    assert parse_jobs("auto") == "auto" and parse_jobs("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(Exception, match="--jobs takes"):
            parse_jobs(bad)
