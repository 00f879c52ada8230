"""The two reference experiment sets of configs/ run at CI size and give a full report.

CI size: the files as they are, with fewer epochs and seeds (next-item) or a two-point
slice of the grid with a smaller catalogue and network (next-basket); the full-size
commands are in docs/experiments.md. Needs the real data (skips without it).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from seqrec import report
from seqrec.experiment import grid, load_experiment, run_grid
from test_report import _png_ok

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


pytestmark = pytest.mark.usefixtures("one_thread")


def _needs(data_dir: Path, rel: str) -> None:
    if not (data_dir / rel).exists():
        pytest.skip(f"real-data test: {data_dir / rel} not found")


def _rows(md: str, before: str = "## Significance") -> list[str]:
    return [line for line in md.split(before)[0].splitlines() if re.match(r"\| \d+ \|", line)]


def test_next_item_notebook_experiments_report(data_dir: Path, tmp_path: Path) -> None:
    _needs(data_dir, "ml-100k/u.data")
    cfg = load_experiment(
        CONFIGS / "ml100k_notebook_experiments.toml", ["search.seeds=[0]", "train.epochs=1"]
    )
    configs = grid(cfg)
    assert [c.variant for c in configs] == [
        "baseline",
        "hidden_100",
        "lr_0.005",
        "dropout_0.3",
        "padding",
    ]
    results = run_grid(configs, tmp_path / "runs", progress=False)
    assert [r.status for r in results] == ["new"] * 5
    events = {r.config.variant: r.metrics["train"]["events"] for r in results}
    # the notebook's loader drops the tails of the last sessions; padding trains every event
    assert events["baseline"] == 57_600 < events["padding"] == 82_075
    res = report.build([tmp_path / "runs"], tmp_path / "report")
    md = res.markdown.read_text()
    rows = _rows(md)
    assert len(rows) == 5 == res.n_points
    for variant in ("baseline", "hidden_100", "lr_0.005", "dropout_0.3", "padding"):
        assert sum(f"| {variant} |" in r for r in rows) == 1, variant
    assert "dataset**: ml-100k" in md and "ties**: conservative" in md
    assert {"learning_curves.png", "models.png", "accuracy_vs_time.png"} <= {
        p.name for p in res.images
    }
    for p in res.images:
        _png_ok(p)


def test_next_basket_notebook_grid_report(data_dir: Path, tmp_path: Path) -> None:
    _needs(data_dir, "instacart/orders.csv.gz")
    sets = [
        "train.epochs=1",
        "preprocess.min_item_support=50",
        "model.hidden=32",
        "model.head_dim=32",
        "model.layers=1",
    ]
    cfg = load_experiment(CONFIGS / "instacart_notebook_grid.toml", sets)
    assert len(grid(cfg)) == 288  # the reference grid, before the CI-size slice
    one = {k: [v[0]] for k, v in cfg.grid.items()}
    configs = grid(cfg, {**one, "model.encoder": ["cnn", "attention"]})
    assert len(configs) == 2
    results = run_grid(configs, tmp_path / "runs", progress=False)
    assert [r.status for r in results] == ["new", "new"]
    rows = list(csv.DictReader((tmp_path / "runs" / "summary.csv").open()))
    assert [r["model.encoder"] for r in rows] == ["cnn", "attention"]
    for r in rows:
        assert 0.0 < float(r["test.recall@10"]) <= 1.0
        assert 0.0 <= float(r["test.f1_micro"]) <= 1.0
    res = report.build([tmp_path / "runs"], tmp_path / "report")
    md = res.markdown.read_text()
    assert len(_rows(md)) == 2
    assert "task**: next-basket" in md
    for p in res.images:
        _png_ok(p)
