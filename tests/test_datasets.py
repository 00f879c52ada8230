"""Dataset registry: lookup order, offline behaviour, verified atomic installs (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import urllib.request
import zipfile
from pathlib import Path

import polars as pl
import pytest

from seqrec import datasets
from seqrec.columns import Columns
from seqrec.datasets import (
    DATASETS,
    DatasetSpec,
    RemoteFile,
    data_dirs,
    download,
    file_digest,
    load_dataset,
    locate,
    verify_file,
)
from seqrec.exceptions import DataError, DatasetNotFoundError

U_DATA = "1\t10\t5\t100\n1\t11\t4\t101\n2\t10\t3\t102\n"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real env, an empty cache, and any network access fails the test."""
    monkeypatch.delenv("SEQREC_DATA", raising=False)
    monkeypatch.setenv("SEQREC_CACHE", str(tmp_path / "cache"))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def fake_response(payload: bytes):
    def urlopen(url: str, timeout: float = 0) -> io.BytesIO:
        return io.BytesIO(payload)

    return urlopen


def make_zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


# ------------------------------------------------------------------------- registry
def test_registry_is_complete() -> None:
    assert set(DATASETS) == {"ml-100k", "ml-1m", "yoochoose-100k", "instacart", "tafeng"}
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.files and spec.licence
        # Kaggle's Instacart needs a login and Ta-Feng's preprocessed file has no release
        assert bool(spec.sources) == (spec.task == "next-item"), name
        for src in spec.sources:
            assert src.url.startswith("https://")
            assert len(src.checksum) == {"md5": 32, "sha256": 64}[src.algorithm]
            assert src.size > 0
    assert DATASETS["ml-1m"].url == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert DATASETS["ml-1m"].sources[0].members == (("ml-1m/ratings.dat", "ratings.dat"),)


def test_manual_datasets_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no public download") as info:
        locate("instacart", tmp_path)
    assert "kaggle.com" in str(info.value)
    with pytest.raises(DataError, match="no public download"):
        download("tafeng", tmp_path / "cache")


def test_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEQREC_DATA", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert data_dirs(tmp_path / "x") == [
        tmp_path / "x",
        tmp_path / "a",
        tmp_path / "b",
        tmp_path / "cache",
    ]
    monkeypatch.delenv("SEQREC_CACHE")
    assert data_dirs()[-1] == Path.home() / ".cache" / "seqrec" / "datasets"


def test_locate_and_load_from_data_dir(tmp_path: Path) -> None:
    (tmp_path / "d" / "ml-100k").mkdir(parents=True)
    (tmp_path / "d" / "ml-100k" / "u.data").write_text(U_DATA)
    assert locate("ml-100k", tmp_path / "d") == tmp_path / "d" / "ml-100k"
    df = load_dataset("ml-100k", data_dir=tmp_path / "d")
    assert df.height == 3 and df[Columns.session].to_list() == [1, 1, 2]


def test_env_var_is_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "env" / "ml-100k").mkdir(parents=True)
    (tmp_path / "env" / "ml-100k" / "u.data").write_text(U_DATA)
    monkeypatch.setenv("SEQREC_DATA", str(tmp_path / "env"))
    assert locate("ml-100k") == tmp_path / "env" / "ml-100k"


def test_absent_dataset_is_not_downloaded_by_default(tmp_path: Path) -> None:
    (tmp_path / "d" / "ml-1m").mkdir(parents=True)  # folder without ratings.dat
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("ml-1m", data_dir=tmp_path / "d")  # urlopen would fail the test
    msg = str(info.value)
    assert "lacks ratings.dat" in msg
    assert str(tmp_path / "cache" / "ml-1m") in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert "download('ml-1m')" in msg


def test_unknown_name() -> None:
    with pytest.raises(DatasetNotFoundError, match="registered datasets"):
        locate("ml-42m")


# -------------------------------------------------------------------------- download
def test_verification_rejects_corrupted_archive(tmp_path: Path) -> None:
    spec = DATASETS["ml-1m"].sources[0]
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(b"\0" * spec.size)  # right size, wrong content
    with pytest.raises(DataError, match="md5 checksum mismatch"):
        verify_file(archive, spec)
    archive.write_bytes(make_zip({"ml-1m/ratings.dat": "1::1::5::1\n"}))
    with pytest.raises(DataError, match="size"):
        verify_file(archive, spec)


def test_corrupted_download_installs_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    size = DATASETS["ml-1m"].sources[0].size
    monkeypatch.setattr(urllib.request, "urlopen", fake_response(b"x" * size))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("ml-1m", download=True)
    cache = tmp_path / "cache"
    assert not (cache / "ml-1m").exists()
    assert list(cache.iterdir()) == []  # temporary folder removed


def test_oversized_download_is_cut_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    size = DATASETS["ml-100k"].sources[0].size
    monkeypatch.setattr(urllib.request, "urlopen", fake_response(b"x" * (size + 1)))
    with pytest.raises(DataError, match="more than the published"):
        download("ml-100k", tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere" / "ml-100k").exists()


def test_verified_download_extracts_only_needed_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    payload = make_zip({"toy/u.data": U_DATA, "toy/README": "not needed"})
    text = "SessionId\tItemId\tTime\n1\t2\t3.5\n1\t4\t5.0\n"
    spec = DatasetSpec(
        name="toy",
        description="test",
        files=("u.data", "log.txt.gz"),
        sources=(
            RemoteFile(
                url="https://example.invalid/toy.zip",
                size=len(payload),
                algorithm="md5",
                checksum=hashlib.md5(payload).hexdigest(),
                checksum_source="test",
                members=(("toy/u.data", "u.data"),),
            ),
            RemoteFile(
                url="https://example.invalid/log.txt",
                size=len(text),
                algorithm="sha256",
                checksum=hashlib.sha256(text.encode()).hexdigest(),
                checksum_source="test",
                target="log.txt.gz",
            ),
        ),
        homepage="https://example.invalid",
        licence="test",
        reader=lambda folder: datasets.read_movielens(folder / "u.data"),
        file_sha256=(("u.data", hashlib.sha256(U_DATA.encode()).hexdigest()),),
    )
    monkeypatch.setitem(DATASETS, "toy", spec)
    responses = {
        "https://example.invalid/toy.zip": payload,
        "https://example.invalid/log.txt": text.encode(),
    }
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout=0: io.BytesIO(responses[url])
    )
    df = load_dataset("toy", download=True)
    folder = tmp_path / "cache" / "toy"
    assert df.height == 3
    assert sorted(p.name for p in folder.iterdir()) == ["log.txt.gz", "u.data"]
    assert gzip.decompress((folder / "log.txt.gz").read_bytes()).decode() == text
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["toy"]
    # present now: a second call does not touch the network
    monkeypatch.setattr(urllib.request, "urlopen", fake_response(b""))
    assert download("toy") == folder


# ------------------------------------------------------------------------- real data
def test_real_ml100k_matches_registry(data_dir: Path) -> None:
    folder = data_dir / "ml-100k"
    if not (folder / "u.data").is_file():
        pytest.skip(f"{folder}/u.data not found")
    ((rel, sha),) = DATASETS["ml-100k"].file_sha256
    assert file_digest(folder / rel, "sha256") == sha
    df = load_dataset("ml-100k", data_dir=data_dir)
    assert df.shape == (100_000, 5)


def test_real_yoochoose_presplit(data_dir: Path) -> None:
    if not (data_dir / "yoochoose-100k").is_dir():
        pytest.skip("yoochoose-100k not found")
    df = load_dataset("yoochoose-100k", data_dir=data_dir)
    counts = dict(df.group_by("split").len().iter_rows())
    assert counts == {"train": 70_278, "test": 13_568}
    assert df.schema["split"] == pl.String
