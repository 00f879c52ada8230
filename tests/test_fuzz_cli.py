"""Fuzz: every CLI subcommand with bad arguments — exit status 2 and a message naming the
problem, never a traceback; and ``-v`` logging, ``--help`` without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _fuzz import CORPUS, FUZZ, assert_cli_error, run_cli, save_pop_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pop_model(tmp_path_factory.mktemp("climodel") / "model")


def _cases(m: str, tmp: str) -> list[tuple[list[str], tuple[str, ...]]]:
    exp = str(CORPUS.parent.parent / ".." / "configs" / "synthetic_gru4rec.toml")
    return [
        # demo
        (["demo", "--sessions", "0"], ("n_sessions",)),
        (["demo", "--items", "1"], ("n_items",)),
        (["demo", "--epochs", "-1"], ("epochs",)),
        (["demo", "--sessions", "many"], ("invalid int",)),
        # run
        (["run", f"{tmp}/none.toml"], ("not found",)),
        (["run", str(CORPUS / "binary.csv")], ("not a text file",)),
        (["run", str(CORPUS / "crlf.csv")], ("experiment file type",)),
        (["run", exp, "--set", "train.epochs=-2", "--out", f"{tmp}/r"], ("epochs",)),
        (["run", exp, "--set", "nokey", "--out", f"{tmp}/r"], ("nokey",)),
        (["run", exp, "--set", "model.nope=1", "--out", f"{tmp}/r"], ("model.nope",)),
        (["run", exp, "--grid", "train.epochs=", "--out", f"{tmp}/r"], ("train.epochs",)),
        (["--threads", "0", "run", exp], ("--threads",)),
        # stats
        (["stats", "no-such-dataset"], ("neither a registered dataset",)),
        (["stats", str(CORPUS / "time_nan.csv")], ("nan", "row 6")),
        (["stats", str(CORPUS / "empty.csv"), "--clean"], ("empty",)),
        (["stats", "synthetic", "--clean", "--min-item-support", "0"], ("min_item_support",)),
        (["stats", str(CORPUS / "crlf.csv"), "--time-unit", "weeks"], ("invalid choice",)),
        (["stats", str(CORPUS / "crlf.csv"), "--format", "item-lists"], ("items",)),
        # evaluate
        (["evaluate", f"{tmp}/nomodel"], ("not found",)),
        (["evaluate", m], ("config.resolved.toml",)),
        (["evaluate", m, "--split", "all"], ("needs data",)),
        (["evaluate", m, str(CORPUS / "time_text_na.csv"), "--split", "all"], ("not numeric",)),
        (["evaluate", m, "synthetic", "--split", "all", "--metrics", "recal@5"], ("recal",)),
        (["evaluate", m, "synthetic", "--split", "all", "--candidates", "x"], ("--candidates",)),
        (["evaluate", m, "synthetic", "--set", "a=1"], ("--set",)),
        # recommend
        (["recommend", m], ("--items",)),
        (["recommend", m, "--items", "1000", "-k", "0"], ("-k",)),
        (["recommend", m, "--items", "1000", "-k", "2.5"], ("invalid int",)),
        (["recommend", m, "--items", "x", "--unknown", "error"], ("not known",)),
        (["recommend", m, "--items", "1", "--input", "f.csv"], ("exclusive",)),
        (["recommend", m, "--input", str(CORPUS / "crlf.csv")], ("--output",)),
        (["recommend", m, "--items", "1000", "--sorted"], ("batch mode",)),
        (
            ["recommend", m, "--input", str(CORPUS / "crlf.csv"), "--output", f"{tmp}/o.xlsx"],
            ("--output must end",),
        ),
        (
            ["recommend", m, "--input", f"{tmp}/missing.csv", "--output", f"{tmp}/o.csv"],
            ("not found",),
        ),
        (
            ["recommend", m, "--input", str(CORPUS / "crlf.csv"), "--output", f"{tmp}/o.csv"]
            + ["--batch-size", "0"],
            ("batch_size",),
        ),
        (
            [
                "recommend",
                m,
                "--input",
                str(CORPUS / "truncated.csv.gz"),
                "--output",
                f"{tmp}/o.csv",
            ],
            ("compressed",),
        ),
        # models
        (["models", "no-such-model"], ("no-such-model",)),
        # usage
        ([], ("required",)),
        (["frobnicate"], ("invalid choice",)),
    ]


def test_cli_bad_arguments(model_dir: Path, tmp_path: Path) -> None:
    cases = _cases(str(model_dir), str(tmp_path))
    failures = []
    for argv, needles in cases:
        try:
            assert_cli_error(argv, *needles)
        except AssertionError as e:
            failures.append(str(e)[:400])
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "r").exists()


def test_serve_bad_model_dir(tmp_path: Path) -> None:
    from seqrec.cli.app import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if "serve" not in sub:
        pytest.skip("no serve subcommand")
    assert_cli_error(["serve", str(tmp_path / "nomodel")], "not found")


_token = st.one_of(
    st.sampled_from(["-k", "--items", "--input", "--output", "--sorted", "--json", "--split"]),
    st.sampled_from(["0", "-1", "1000", "x", "all", "--unknown", "error", "", "1e3"]),
    st.text(alphabet="abc-=01", max_size=6),
)


@FUZZ
@given(
    cmd=st.sampled_from(["recommend", "evaluate", "stats", "models"]),
    tokens=st.lists(_token, max_size=6),
)
def test_cli_random_arguments(model_dir: Path, cmd: str, tokens: list[str]) -> None:
    """Random argument lists: exit 0 or 2, and on 2 an error line, never a traceback."""
    argv = [cmd] + ([str(model_dir)] if cmd in ("recommend", "evaluate") else []) + tokens
    rc, out, err = run_cli(argv)
    assert rc in (0, 2), (argv, rc, err)
    assert "Traceback" not in err
    if rc == 2:
        assert "error:" in err


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom seqrec.cli.app import build_parser\n"
        "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "import seqrec\nbad = [m for m in ('torch',) if m in sys.modules]\n"
        "print('TORCH' if bad else 'NO-TORCH')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    out = r.stdout.strip().splitlines()[-1]
    # the serve subcommand may import its server eagerly; everything else is lazy
    if out == "TORCH":
        import importlib.util

        assert importlib.util.find_spec("seqrec.cli.serve") is not None, r.stdout
    else:
        assert out == "NO-TORCH"


def test_verbose_logs_each_epoch_once(tmp_path: Path) -> None:
    exp = tmp_path / "e.toml"
    exp.write_text(
        "name = 'v'\n[data]\ndataset = 'synthetic'\n[data.synthetic]\nn_sessions = 300\n"
        "n_items = 30\n[preprocess]\nmin_item_support = 1\n[split]\ntest_days = 10\n"
        "valid_days = 0\n[model]\nname = 'gru4rec'\nlayers = [16]\n[train]\nepochs = 2\n"
        "[eval]\non = ['test']\n"
    )
    rc, out, err = run_cli(["-v", "run", str(exp), "--out", str(tmp_path / "r"), "--no-progress"])
    assert rc == 0, err
    epoch_lines = [ln for ln in err.splitlines() if " epoch 1 " in f" {ln} "]
    assert len(epoch_lines) == 1, err
    metric_line = next(ln for ln in err.splitlines() if ln.split(": ")[-1].startswith("recall"))
    assert all(len(tok) <= 8 for tok in metric_line.replace(",", " ").split()[-6:]), metric_line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # files readable by others as the umask says (0022 here: 0644 / 0755)
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    weights = tmp_path / "r" / "artifact" / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o777 & ~mask
