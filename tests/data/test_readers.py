"""Readers: canonical output, format detection, every error case, and the real files."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import polars as pl
import pytest

from seqrec.columns import Columns
from seqrec.data.readers import read_interactions, read_movielens, read_session_log
from seqrec.exceptions import DataError, SchemaError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- formats
def test_session_log_tsv(tmp_path: Path) -> None:
    f = write(
        tmp_path / "log.txt", "SessionId\tItemId\tTime\n3\t214716935\t1396437466.94\n3\t7\t5\n"
    )
    df = read_session_log(f)
    assert df.columns == [Columns.session, Columns.item, Columns.time]
    assert df.schema[Columns.session] == pl.Int64
    assert df.schema[Columns.item] == pl.Int64
    assert df.schema[Columns.time] == pl.Float64
    assert df[Columns.time].to_list() == [1396437466.94, 5.0]


def test_aliases_user_becomes_session_and_rating_float(tmp_path: Path) -> None:
    f = write(tmp_path / "r.csv", "UserId,product_id,ts,Rating\n1,10,100,4\n2,11,50,5\n")
    df = read_interactions(f)
    assert df.columns == [Columns.session, Columns.user, Columns.item, Columns.time, Columns.rating]
    assert df[Columns.session].to_list() == df[Columns.user].to_list() == [1, 2]
    assert df.schema[Columns.rating] == pl.Float64
    assert df[Columns.time].to_list() == [100.0, 50.0]  # file order kept, no sorting


def test_string_ids_stay_strings(tmp_path: Path) -> None:
    f = write(tmp_path / "s.csv", "session,item,time\nabc,x1,1\nabc,007,2\n")
    df = read_interactions(f)
    assert df.schema[Columns.session] == pl.String
    assert df.schema[Columns.item] == pl.String
    assert df[Columns.item].to_list() == ["x1", "007"]


def test_explicit_mapping_and_extra_columns_dropped(tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", "visit,sku,when,price\n1,5,10,9.9\n1,6,11,1.0\n")
    cols = {"session_id": "visit", "item_id": "sku", "timestamp": "when"}
    df = read_interactions(f, columns=cols)
    assert df.columns == [Columns.session, Columns.item, Columns.time]


def test_headerless_with_positions(tmp_path: Path) -> None:
    f = write(tmp_path / "h.tsv", "1\t5\t10\n1\t6\t11\n")
    df = read_interactions(
        f, columns={"session_id": 0, "item_id": 1, "timestamp": 2}, has_header=False
    )
    assert df[Columns.item].to_list() == [5, 6]


def test_gzip_and_sniffed_semicolon(tmp_path: Path) -> None:
    f = tmp_path / "log.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("session_id;item_id;timestamp\n1;2;3\n1;4;5\n")
    df = read_interactions(f)
    assert df.shape == (2, 3)


def test_parquet(tmp_path: Path) -> None:
    f = tmp_path / "log.parquet"
    pl.DataFrame({"SessionId": [1, 1], "ItemId": ["a", "b"], "Time": [1.5, 2.5]}).write_parquet(f)
    df = read_interactions(f)
    assert df[Columns.item].to_list() == ["a", "b"]
    assert df[Columns.time].to_list() == [1.5, 2.5]


def test_milliseconds(tmp_path: Path) -> None:
    f = write(tmp_path / "ms.csv", "session_id,item_id,timestamp\n1,2,1500\n")
    assert read_interactions(f, time_unit="ms")[Columns.time].to_list() == [1.5]


def test_datetime_strings(tmp_path: Path) -> None:
    f = write(
        tmp_path / "dt.csv",
        "session_id,item_id,timestamp\n1,2,2014-04-01T00:00:00.500Z\n1,3,2014-04-01T00:01:00Z\n",
    )
    df = read_interactions(f, time_unit="datetime")
    assert df[Columns.time].to_list() == [1396310400.5, 1396310460.0]
    naive = write(tmp_path / "naive.csv", "session_id,item_id,timestamp\n1,2,1970-01-02 00:00:00\n")
    assert read_interactions(naive, time_unit="datetime")[Columns.time].to_list() == [86400.0]


def test_movielens_both_formats(tmp_path: Path) -> None:
    ml1m = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n2::661::3::978302109\n")
    ml100k = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    for f in (ml1m, ml100k):
        df = read_movielens(f)
        assert df.columns == [
            Columns.session,
            Columns.user,
            Columns.item,
            Columns.time,
            Columns.rating,
        ]
        assert df.schema[Columns.item] == pl.Int64
        assert df.schema[Columns.rating] == pl.Float64
    assert read_movielens(ml1m)[Columns.item].to_list() == [1193, 661]
    assert read_movielens(tmp_path)[Columns.item].to_list() == [242, 302]  # folder -> u.data


# ------------------------------------------------------------------------------ errors
def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found: .*nope.csv"):
        read_interactions(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not found"):
        read_movielens(tmp_path / "u.data")


def test_wrong_separator(tmp_path: Path) -> None:
    f = write(tmp_path / "log.txt", "SessionId\tItemId\tTime\n1\t2\t3\n")
    with pytest.raises(DataError, match="expected comma-separated.*tab-separated"):
        read_interactions(f, sep=",")


def test_unparsable_rows(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.csv", "session_id,item_id,timestamp\n1,2,3\n1,2,3,4,5\n")
    with pytest.raises(DataError, match="comma-separated") as info:
        read_interactions(f)
    assert isinstance(info.value.__cause__, pl.exceptions.PolarsError)


def test_too_few_fields_reported(tmp_path: Path) -> None:
    f = write(tmp_path / "short.csv", "session_id,item_id,timestamp\n1,2,3\n1,2\n")
    with pytest.raises(DataError, match="missing values.*separator"):
        read_interactions(f)


def test_movielens_wrong_format(tmp_path: Path) -> None:
    f = write(tmp_path / "u.data", "196,242,3,881250949\n")
    with pytest.raises(DataError, match="expected MovieLens"):
        read_movielens(f)
    g = write(tmp_path / "ratings.dat", "1::x::5::978300760\n")
    with pytest.raises(DataError, match="not a MovieLens ratings file"):
        read_movielens(g)


def test_missing_column_lists_found_and_expected(tmp_path: Path) -> None:
    f = write(tmp_path / "m.csv", "sess,thing,when\n1,2,3\n")
    with pytest.raises(SchemaError, match=r"found columns \['sess', 'thing', 'when'\].*columns="):
        read_interactions(f)


def test_misnamed_mapping(tmp_path: Path) -> None:
    f = write(tmp_path / "m.csv", "SessionId,ItemId,Time\n1,2,3\n")
    with pytest.raises(SchemaError, match=r"not found; the file has columns"):
        read_interactions(
            f, columns={"session_id": "Session", "item_id": "ItemId", "timestamp": "Time"}
        )
    with pytest.raises(SchemaError, match="unknown canonical name"):
        read_interactions(f, columns={"sessionid": "SessionId"})


def test_session_log_wrong_header(tmp_path: Path) -> None:
    f = write(tmp_path / "log.txt", "session\titem\ttime\n1\t2\t3\n")
    with pytest.raises(SchemaError, match="SessionId"):
        read_session_log(f)


def test_non_numeric_timestamp_suggests_time_unit(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "session_id,item_id,timestamp\n1,2,2014-04-01 10:00:00\n")
    with pytest.raises(SchemaError, match="time_unit='datetime'"):
        read_interactions(f, time_unit="s")
    assert read_interactions(f)["timestamp"].to_list() == [1396346400.0]  # auto: ISO text
    g = write(tmp_path / "g.csv", "session_id,item_id,timestamp\n1,2,yesterday\n")
    with pytest.raises(SchemaError, match="could not parse timestamp"):
        read_interactions(g, time_unit="datetime")


def test_empty_log(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        read_interactions(write(tmp_path / "zero.csv", ""))
    with pytest.raises(DataError, match="no rows"):
        read_interactions(write(tmp_path / "hdr.csv", "session_id,item_id,timestamp\n"))


def test_corrupt_gzip(tmp_path: Path) -> None:
    f = tmp_path / "x.txt.gz"
    f.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError):
        read_interactions(f)


# --------------------------------------------------------------------------- real data
def test_ml100k_real(ml100k: pl.DataFrame) -> None:
    assert ml100k.height == 100_000
    assert ml100k[Columns.session].n_unique() == 943
    assert ml100k[Columns.item].n_unique() == 1682
    assert ml100k[Columns.time].min() == 874724710.0
    assert ml100k[Columns.time].max() == 893286638.0
    assert ml100k.null_count().sum_horizontal().item() == 0


def test_ml100k_read_is_fast(data_dir: Path) -> None:
    path = data_dir / "ml-100k" / "u.data"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        read_movielens(path)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.2, f"reading ML-100K took {best:.3f} s"


def test_yoochoose_real(data_dir: Path) -> None:
    folder = data_dir / "yoochoose-100k"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    train = read_session_log(folder / "yoochoose-clicks-100k_train_full.txt.gz")
    test = read_session_log(folder / "yoochoose-clicks-100k_test.txt.gz")
    assert (train.height, test.height) == (70_278, 13_568)
    assert train[Columns.session].n_unique() == 17_794
    assert test[Columns.item].is_in(train[Columns.item].implode()).all()
