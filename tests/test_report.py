"""seqrec report / seqrec.report.build: protocol, table best first, embedded non-blank PNGs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from _configs import TINY, TINY_BASKETS
from seqrec.cli import main
from seqrec.exceptions import DataError
from seqrec.experiment import grid, load_experiment, run_grid, run_one

pytest.importorskip("matplotlib")

from seqrec import report  # noqa: E402  (needs matplotlib)

GRID = """
[grid]
"model.layers" = [[4], [8]]
"train.learning_rate" = [0.01, 0.2]

[search]
seeds = [0, 1]
"""

BASKETS = TINY_BASKETS + '[grid]\n"model.k" = [2, 10, 50]\n'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    exp = root / "g.toml"
    exp.write_text(TINY.replace("epochs = 1", "epochs = 2") + GRID)
    run_grid(grid(exp), root / "grid", progress=False)
    pop = root / "p.toml"
    pop.write_text(TINY)
    run_one(load_experiment(pop, ["model.name=pop"]), root / "pop", progress=False)
    torch.set_num_threads(old)
    return root


def _png_ok(path: Path, min_w: int = 400, min_h: int = 250) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (path, w, h)
    rgb = img[..., :3]
    non_white = float((rgb < 0.95).any(axis=-1).mean())
    assert 0.01 < non_white < 0.9, (path, non_white)  # not blank, not a solid block
    assert float(np.std(rgb)) > 0.05


def test_report_has_protocol_table_and_plots(runs: Path, tmp_path: Path) -> None:
    res = report.build([runs / "grid", runs / "pop"], tmp_path / "r", metric="mrr@20")
    assert res.n_runs == 9 and res.n_points == 5 and res.part == "test"
    md = res.markdown.read_text()
    for needle in (
        "dataset**: synthetic",
        "fingerprint",
        "split**: split_by_time",
        "ties**: conservative",
        "candidates**: full",
        "exclude_seen=False",
        "cutoffs**: 20",
    ):
        assert needle in md, needle
    header = next(line for line in md.splitlines() if line.startswith("| # |"))
    assert "model.layers" in header and "train.learning_rate" in header
    assert "mrr@20 (95% CI)" in header and "seeds" in header
    table = md.split("## Significance")[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 5
    cols = [c.strip() for c in header.strip("|").split("|")]
    i = cols.index("mrr@20 (95% CI)")
    means = [float(r.strip("|").split("|")[i].split()[0]) for r in rows]
    assert means == sorted(means, reverse=True)  # best first
    gru = [r for r in rows if "gru4rec" in r]
    assert all(" ± " in r and "[" in r for r in gru)  # mean ± std [CI] over two seeds
    names = sorted(p.name for p in res.images)
    assert names == sorted(
        [
            "learning_curves.png",
            "metric_vs_model_layers.png",
            "metric_vs_train_epochs.png",
            "metric_vs_train_learning_rate.png",
            "models.png",
            "accuracy_vs_time.png",
        ]
    )
    for p in res.images:
        _png_ok(p)
        assert f"]({p.name})" in md
    page = res.html.read_text()
    assert page.count('src="data:image/png;base64,') == len(res.images)
    assert not re.search(r'src="(?!data:)', page)  # self-contained
    assert "<table>" in page and "Protocol" in page


def test_report_significance_table(runs: Path, tmp_path: Path) -> None:
    res = report.build([runs / "grid", runs / "pop"], tmp_path / "r", metric="mrr@20")
    md = res.markdown.read_text()
    sec = md.split("## Significance", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in sec.splitlines() if line.startswith("| # |"))
    for col in ("model", "point", "seeds", "mrr@20 difference", "95% CI", "| p |", "queries"):
        assert col in header, col
    rows = [line for line in sec.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 4 == len(res.significance)  # the best of 5 points against the 4 others
    assert "2000 resamples" in sec and "Wilcoxon" in sec and "seeds are averaged" in sec
    # the rows are the tests of the best point's seeds against each point's seeds
    table = [
        line for line in md.split("## Significance")[0].splitlines() if line.startswith("| 1 |")
    ]
    assert "gru4rec" in table[0]
    t = res.significance[0]
    assert len(t.runs_a) == 2 and t.n > 50  # two seeds per grid point, averaged per query
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[-4] == f"{t.difference:+.4f}" and cells[-1] == str(t.n)
    direct = report.paired_test(t.runs_a, t.runs_b, metric="mrr@20", n_boot=2000, seed=0)
    assert (direct.difference, direct.ci_low, direct.p_value) == (t.difference, t.ci_low, t.p_value)
    assert all(x.difference >= 0 for x in res.significance)  # best minus the others
    pop = next(x for x in res.significance if x.runs_b == [runs / "pop"])
    assert pop.significant and pop.ci_low > 0  # GRU4Rec learns the synthetic task, pop not
    page = res.html.read_text()
    assert "<h2>Significance</h2>" in page and "mrr@20 difference" in page


def test_significance_cap_and_old_runs(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    g = tmp_path / "grid"
    shutil.copytree(runs / "grid", g)
    old = sorted(d for d in g.iterdir() if d.is_dir())[-1]
    shutil.rmtree(old / "queries")  # a run written before per-query results
    monkeypatch.setattr(report, "MAX_SIGNIFICANCE", 2)
    res = report.build([g, runs / "pop"], tmp_path / "r", metric="mrr@20")
    sec = res.markdown.read_text().split("## Significance", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in sec.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 2 and "(2 of 4)" in sec
    assert any("pop" in r for r in rows)  # the best point of each other model comes first
    monkeypatch.undo()
    res = report.build([g, runs / "pop"], tmp_path / "r2", metric="mrr@20")  # uncapped
    sec = res.markdown.read_text().split("## Significance", 1)[1].split("\n## ", 1)[0]
    assert "no per-query results" in sec and "| - |" in sec  # its point's row, explained


def test_mixed_protocols_warn_and_get_a_table_each(
    runs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exp = tmp_path / "o.toml"
    exp.write_text(TINY)
    run_one(load_experiment(exp, ["eval.ties=optimistic"]), tmp_path / "opt", progress=False)
    run_one(
        load_experiment(exp, ["eval.ties=optimistic", "model.name=pop"]),
        tmp_path / "op",
        progress=False,
    )
    with caplog.at_level("WARNING", logger="seqrec"):
        res = report.build([runs / "pop", tmp_path / "opt", tmp_path / "op"], tmp_path / "r")
    assert len(res.protocols) == 2 and len(res.warnings) == 1
    assert "2 different protocols" in caplog.text and "differ" in caplog.text
    assert "ties" in res.warnings[0] and "fingerprint" not in res.warnings[0]
    md = res.markdown.read_text()
    assert "**Warning**" in md and "ties" in md.split("## Protocol 1")[0]
    assert "## Protocol 1 (1 run(s))" in md and "## Protocol 2 (2 run(s))" in md
    one, two = md.split("## Protocol 2")
    assert "ties**: conservative" in one and "ties**: optimistic" in two
    assert "### Runs under protocol 1" in one and "### Runs under protocol 2" in two
    assert "| protocol |" not in md

    def rows(text: str) -> list[str]:
        return [x for x in text.split("## Plots")[0].splitlines() if re.match(r"\| \d+ \|", x)]

    runs_one = one.split("### Significance")[0]
    assert len(rows(runs_one)) == 1 and "One point only" in one
    sig_two = two.split("### Significance under protocol 2")[1]
    assert len(rows(sig_two)) == 1  # gru4rec vs pop, both optimistic; never across protocols
    assert len(res.significance) == 1 and res.significance[0].runs_b[0].parent == tmp_path
    assert "<h2>Protocol 2 (2 run(s))</h2>" in res.html.read_text()
    again = report.build([runs / "pop", tmp_path / "opt"], tmp_path / "r", allow_mixed=True)
    assert len(again.protocols) == 2  # still accepted, no effect


def test_next_basket_report(tmp_path: Path) -> None:
    exp = tmp_path / "b.toml"
    exp.write_text(BASKETS)
    run_grid(grid(exp), tmp_path / "b", progress=False)
    res = report.build([tmp_path / "b"], tmp_path / "r", metric="f1_micro")
    md = res.markdown.read_text()
    assert "f1_micro (95% CI)" in md and "next-basket" in md and "model.k" in md
    assert "learning_curves.png" not in {p.name for p in res.images}  # no epochs: no curves
    for p in res.images:
        _png_ok(p)
    vs = next(p for p in res.images if p.name == "metric_vs_model_k.png")
    assert vs.is_file()
    sig = md.split("## Significance", 1)[1].split("\n## ", 1)[0]
    assert "f1_micro pools over all queries" in sig and "| # |" not in sig
    res = report.build([tmp_path / "b"], tmp_path / "r2", metric="recall@10")
    sig = res.markdown.read_text().split("## Significance", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in sig.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 2 == len(res.significance)  # k=... best against the two others
    assert all(t.n == 120 for t in res.significance)  # one target basket per user


def test_cli_report(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["report", str(runs / "grid"), "--out", str(out), "--part", "valid"]) == 0
    text = capsys.readouterr().out
    assert "by valid recall@20" in text and (out / "report.html").is_file()
    assert main(["report", str(tmp_path / "nothing"), "--out", str(out)]) != 0
    assert main(["report", str(runs / "pop"), "--metric", "nope@3", "--out", str(out)]) != 0
    assert "nope@3" in capsys.readouterr().err


def test_no_finished_run_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no finished run"):
        report.build([tmp_path / "empty"], tmp_path / "r")


def test_failed_and_unfinished_runs_are_listed_not_tabled(runs: Path, tmp_path: Path) -> None:
    import json
    import shutil

    g = tmp_path / "grid"
    shutil.copytree(runs / "grid", g)
    bad = g / "tiny-0123456789-s0"
    bad.mkdir()
    (bad / "error.json").write_text(json.dumps({"error": "RuntimeError", "message": "diverged"}))
    (g / ".tiny-9876543210-s0.partial").mkdir()
    res = report.build([g], tmp_path / "r", metric="mrr@20")
    assert res.n_runs == 8
    md = res.markdown.read_text()
    assert "## Failed runs" in md and "RuntimeError: diverged" in md
    assert "diverged" in res.html.read_text()
