"""Fuzz: malformed event files through the readers, ``seqrec stats`` and batch recommendation.

Entry points: ``read_interactions`` / ``read_item_lists`` (corpus + generated files),
``seqrec stats`` (corpus), ``recommend_file`` / ``seqrec recommend --input`` (corpus +
generated session files). Each case ends in a SeqrecError (CLI: exit 2 + a message naming
the problem) or a result equal to an independent computation.
"""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from _fuzz import CORPUS, FUZZ, assert_cli_error, run_cli, save_pop_model
from seqrec.batch import recommend_file
from seqrec.data.readers import read_interactions, read_item_lists
from seqrec.exceptions import DataError, SchemaError, SeqrecError
from seqrec.recommender import Recommender

# file -> expected error class and words its message must contain; or "ok" and the
# timestamps (unix seconds) of the first two rows
READER_CORPUS: dict[str, tuple[type[SeqrecError], tuple[str, ...]] | tuple[str, list[float]]] = {
    "empty.csv": (DataError, ("empty",)),
    "header_only.csv": (DataError, ("no rows",)),
    "only_header_no_newline.csv": (DataError, ("no rows",)),
    "missing_item_col.csv": (SchemaError, ("required columns", "columns=")),
    "misnamed_columns.csv": (SchemaError, ("required columns", "--columns")),
    "no_header.csv": (SchemaError, ("required columns",)),
    "time_text_na.csv": (SchemaError, ("not numeric", "row 6", "n/a")),
    "time_nan.csv": (SchemaError, ("nan", "row 6")),
    "time_inf.csv": (SchemaError, ("infinite", "row 6")),
    "time_negative.csv": (SchemaError, ("negative", "row 6")),
    "time_year_52671.csv": (SchemaError, ("year 9999", "row 6", "milliseconds")),
    "time_mixed_iso_numbers.csv": (SchemaError, ("not numeric", "row 0")),
    "time_datetime_garbage.csv": (SchemaError, ("dates", "yesterday")),
    "ragged_rows.csv": (DataError, ("separator",)),
    "empty_cells.csv": (DataError, ("missing values", "item_id")),
    "binary.csv": (DataError, ("binary",)),
    "truncated.csv.gz": (DataError, ("gzip",)),
    "gzip_garbage.csv.gz": (DataError, ("gzip",)),
    "truncated.parquet": (DataError, ("parquet",)),
    "big_oneline.json": (DataError, ("json",)),
    "ratings_bad_rating.csv": (SchemaError, ("rating", "row 0")),
    "crlf.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
    "duplicates.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
    "semicolon_as_csv.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
    "float_item_ids.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
    "string_ids.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
    "time_ms.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
    "time_iso.csv": ("ok", [1_600_000_000.0, 1_600_000_010.0]),
}


def _python_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a small CSV, parsed by the standard library (the independent reader)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        text = fh.read()
    sep = ";" if text.count(";") > text.count(",") else ","
    return list(csv.DictReader(text.splitlines(), delimiter=sep))


def test_reader_corpus_is_complete() -> None:
    names = {p.name for p in CORPUS.iterdir() if not p.name.startswith("batch_")}
    assert names == set(READER_CORPUS)


@pytest.mark.parametrize("name", sorted(READER_CORPUS))
def test_reader_corpus(name: str) -> None:
    expected = READER_CORPUS[name]
    path = CORPUS / name
    if expected[0] == "ok":
        df = read_interactions(path)
        assert df.get_column("timestamp").head(2).to_list() == expected[1]
        rows = _python_csv(path)
        assert df.height == len(rows)
        ids = [r["item_id"] for r in rows]
        got = [str(v) for v in df.get_column("item_id").to_list()]
        assert got == ids  # ids keep their text (1.5 stays "1.5", never 1)
        return
    cls, needles = expected
    with pytest.raises(SeqrecError) as e:
        read_interactions(path)
    assert isinstance(e.value, cls), (type(e.value), e.value)
    msg = str(e.value)
    assert len(msg) < 600, msg
    for n in needles:
        assert n.lower() in msg.lower(), (n, msg)


@pytest.mark.parametrize("name", sorted(n for n, v in READER_CORPUS.items() if v[0] != "ok"))
def test_stats_cli_corpus(name: str) -> None:
    """``seqrec stats FILE``: exit 2 with a message naming the file, never a traceback."""
    assert_cli_error(["stats", str(CORPUS / name)], name)


def test_stats_cli_columns_sep_time_unit(tmp_path: Path) -> None:
    f = tmp_path / "log.txt"
    f.write_text("S|I|T\n1|10|1600000000000\n1|11|1600000010000\n2|10|1600000020000\n")
    assert_cli_error(["stats", str(f)], "required columns", "--columns")
    rc, out, err = run_cli(
        ["stats", str(f), "--sep", "pipe", "--columns", "session_id=S,item_id=I,timestamp=T"]
    )
    assert rc == 0, err
    assert "events" in out and "3" in out
    rc, out, err = run_cli(
        ["stats", str(f), "--sep", "|", "--columns", "session_id=0,item_id=1,timestamp=2"]
    )
    assert rc == 0, err
    assert_cli_error(
        ["stats", str(f), "--sep", "|", "--columns", "session_id=S,item_id=I,timestamp=T"]
        + ["--time-unit", "s"],
        "year 9999",
        "milliseconds",
    )
    assert_cli_error(["stats", "synthetic", "--sep", ","], "--sep", "registered dataset")
    assert_cli_error(["stats", str(f), "--columns", "bogus"], "--columns")


# ------------------------------------------------------------------- generated files
_ids = st.integers(min_value=0, max_value=6)
_times = st.integers(min_value=1_500_000_000, max_value=1_600_000_000).map(str)
_rows = st.lists(st.tuples(_ids, _ids, _times), min_size=1, max_size=12)
_garbage = st.sampled_from(["", "n/a", "NaN", "-1", "1e20", "inf", "2020-01-01", " 7 ", "0x10"])


@FUZZ
@given(
    rows=_rows,
    sep=st.sampled_from([",", "\t", ";"]),
    header=st.sampled_from([True, True, True, False]),
    bad=st.one_of(st.none(), st.none(), st.tuples(st.integers(0, 11), _garbage)),
    ms=st.booleans(),
)
def test_read_generated_files(
    tmp_path_factory: pytest.TempPathFactory, rows, sep, header, bad, ms
) -> None:
    """Random small logs, maybe one garbage time: a SeqrecError, or exactly the rows
    written (times in the unit their magnitude says)."""
    if bad is not None and rows:
        j, value = bad[0] % len(rows), bad[1]
        rows = [*rows[:j], (rows[j][0], rows[j][1], value), *rows[j + 1 :]]
    if ms:  # a log in milliseconds
        rows = [(a, b, t + "000" if t.isdigit() else t) for a, b, t in rows]
    path = tmp_path_factory.mktemp("gen") / "log.csv"
    lines = (["session_id", "item_id", "timestamp"],) if header else ()
    text = "\n".join(sep.join(map(str, r)) for r in [*lines, *rows]) + "\n"
    path.write_text(text)
    try:
        df = read_interactions(path)
    except SeqrecError as e:
        assert len(str(e)) < 1000
        event(f"error: {type(e).__name__} {str(e).split(':')[1][:40]}")
        return
    event("accepted")
    # accepted: every time was a valid number (or ISO date) and the frame is what was written
    assert header and rows
    want = []
    for s, i, t in rows:
        t = t.strip()
        value = float(t) if t[:1].isdigit() and "-" not in t and "x" not in t else None
        assert value is not None and math.isfinite(value), t
        want.append((s, i, value))
    med = float(np.median([w[2] for w in want if w[2] > 0] or [0.0]))
    scale = 1.0 if med < 1e11 else 1e-3
    assert all(0 <= v * scale <= 253402300799 for _, _, v in want)
    got = list(df.select("session_id", "item_id", "timestamp").iter_rows())
    assert got == pytest.approx([(s, i, v * scale) for s, i, v in want])


@FUZZ
@given(
    sessions=st.lists(st.lists(st.integers(0, 99), min_size=0, max_size=5), min_size=1, max_size=8)
)
def test_read_item_lists_generated(tmp_path_factory: pytest.TempPathFactory, sessions) -> None:
    path = tmp_path_factory.mktemp("lists") / "s.tsv"
    body = "".join(f"{k}\ttrain\t{' '.join(map(str, items))}\n" for k, items in enumerate(sessions))
    path.write_text("session_id\tsplit\titems\n" + body)
    try:
        df = read_item_lists(path)
    except SchemaError as e:
        assert any(not s for s in sessions) and "without items" in str(e)
        event("error")
        return
    event("accepted")
    want = [(k, it, float(p)) for k, items in enumerate(sessions) for p, it in enumerate(items)]
    assert list(df.select("session_id", "item_id", "timestamp").iter_rows()) == want


# ------------------------------------------------------------------- batch recommendation
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_pop_model(tmp_path_factory.mktemp("fuzzmodel") / "model")


BATCH_CORPUS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "batch_time_text.csv": ([], ("not numeric", "row 2", "--file-order")),
    "batch_missing_item.csv": ([], ("missing", "row 1")),
    "batch_no_session.csv": ([], ("session_id", "--session-col")),
    "batch_fragmented.csv": (["--sorted"], ("--sorted", "session 1")),
    "batch_time_backwards.csv": (["--sorted"], ("time order", "session 1")),
    "batch_binary.csv": ([], ("not found", "--session-col")),
    "batch_float_items.csv": (["--unknown", "error"], ("unknown",)),
}


def test_batch_corpus_is_complete() -> None:
    assert {p.name for p in CORPUS.glob("batch_*")} == set(BATCH_CORPUS)


@pytest.mark.parametrize("name", sorted(BATCH_CORPUS))
def test_batch_corpus_cli(model_dir: Path, tmp_path: Path, name: str) -> None:
    extra, needles = BATCH_CORPUS[name]
    out = tmp_path / "recs.csv"
    argv = ["recommend", str(model_dir), "--input", str(CORPUS / name), "--output", str(out)]
    assert_cli_error([*argv, *extra], *needles)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_batch_file_order_option(model_dir: Path, tmp_path: Path) -> None:
    """--file-order keeps the rows of each session in file order (the text time ignored)."""
    rec = Recommender.load(model_dir)
    out = tmp_path / "r.csv"
    stats = recommend_file(
        rec, CORPUS / "batch_time_text.csv", out, k=3, file_order=True, exclude_seen=True
    )
    assert stats["sessions"] == 2
    got = pl.read_csv(out)
    want = rec.recommend_many([[1000, 1001], [1002, 1003]], 3, exclude_seen=True)
    assert got.get_column("item_id").to_list() == [int(i) for ids, _ in want for i in ids]


def test_batch_sorted_fragment_across_chunks(model_dir: Path, tmp_path: Path) -> None:
    """A session met again after other sessions, more than a chunk (10,000 rows) later."""
    n = 12_000
    sess = np.concatenate([[7], np.arange(100, 100 + n), [7]])
    df = pl.DataFrame({"session_id": sess, "item_id": np.full(n + 2, 1000), "timestamp": 1.0})
    src = tmp_path / "s.csv"
    df.write_csv(src)
    rec = Recommender.load(model_dir)
    with pytest.raises(DataError, match="session 7 appears again"):
        recommend_file(rec, src, tmp_path / "r.parquet", k=2, presorted=True)
    assert not list(tmp_path.glob(".r.parquet*")) and not (tmp_path / "r.parquet").exists()


_sessions = st.lists(
    st.tuples(
        st.integers(0, 5),  # session
        st.one_of(st.integers(995, 1035), st.sampled_from(["x", "1001.5", ""])),  # item
        st.one_of(st.integers(0, 50).map(str), st.sampled_from(["n/a", "", "NaN", "3.5"])),
    ),
    min_size=1,
    max_size=25,
)


@FUZZ
@given(rows=_sessions, k=st.integers(1, 4), presorted=st.booleans())
def test_batch_generated(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory, rows, k, presorted
) -> None:
    """Random session files: an error, or the answer of recommend_many on the sessions as
    an independent grouping and numeric sort gives them."""
    rec = Recommender.load(model_dir)
    d = tmp_path_factory.mktemp("batch")
    src = d / "in.csv"
    src.write_text("session_id,item_id,timestamp\n" + "".join(f"{s},{i},{t}\n" for s, i, t in rows))
    out = d / "out.csv"
    try:
        stats = recommend_file(rec, src, out, k=k, presorted=presorted, exclude_seen=True)
    except SeqrecError as e:
        assert len(str(e)) < 1000
        assert not out.exists()
        event("error")
        return
    event("accepted")
    # independent: every row has an item and a numeric time
    parsed = []
    for pos, (s, i, t) in enumerate(rows):
        assert str(i) != "" and t not in ("", "n/a", "NaN")
        parsed.append((s, float(t), pos, i))
    if presorted:  # accepted only when truly contiguous and in time order
        starts = [j for j in range(len(parsed)) if j == 0 or parsed[j][0] != parsed[j - 1][0]]
        assert len({parsed[j][0] for j in starts}) == len(starts)
    parsed.sort(key=lambda p: (p[0], p[1], p[2]))
    sessions: dict[int, list[int]] = {}
    for s, _, _, i in parsed:
        item = int(i) if isinstance(i, int) or str(i).isdigit() else None
        sessions.setdefault(s, [])
        if item is not None and 1000 <= item <= 1029:
            sessions[s].append(item)
    want = rec.recommend_many(list(sessions.values()), k, exclude_seen=True)
    got = pl.read_csv(out) if out.stat().st_size else None
    assert stats["sessions"] == len(sessions)
    want_rows = [
        (s, r + 1, int(it))
        for s, (ids, _) in zip(sessions, want, strict=True)
        for r, it in enumerate(ids)
    ]
    assert got is not None
    # sessions come in file order with --sorted and in id order otherwise: compare per session
    assert sorted(got.select("session_id", "rank", "item_id").iter_rows()) == sorted(want_rows)
