"""Registry of public datasets: files, official sources, checksums, readers, local lookup.

A dataset ``name`` lives in a folder ``<root>/<name>/`` holding its :attr:`DatasetSpec.files`.
Roots are searched in this order (see :func:`data_dirs`):

1. the ``data_dir`` argument, when given;
2. the folders in the ``SEQREC_DATA`` environment variable (``os.pathsep``-separated);
3. the user cache, ``~/.cache/seqrec/datasets`` (or ``$SEQREC_CACHE`` when set).

Nothing is downloaded unless asked (:func:`download`, or ``load_dataset(..., download=True)``);
downloads go to the user cache, are checked against the published size and checksum, and are
installed atomically (a temporary folder in the cache, then renames), so an interrupted or
corrupted download never leaves a half-written dataset behind.

Examples
--------
>>> sorted(DATASETS)
['instacart', 'ml-100k', 'ml-1m', 'tafeng', 'yoochoose-100k']
>>> DATASETS["ml-1m"].files
('ratings.dat',)
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from seqrec.data.baskets import read_basket_json, read_instacart, read_instacart_products
from seqrec.data.readers import read_movielens, read_session_log
from seqrec.exceptions import DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

#: Environment variable: extra data roots (``os.pathsep``-separated), searched before the cache.
ENV_DATA = "SEQREC_DATA"
#: Environment variable: replaces the dataset cache folder ``~/.cache/seqrec/datasets``.
ENV_CACHE = "SEQREC_CACHE"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch from the official source, with its published size and checksum.

    Attributes
    ----------
    url
        Where to fetch it.
    size
        Exact size in bytes of the fetched file.
    algorithm, checksum
        Hash algorithm (``"md5"`` or ``"sha256"``) and the hex digest of the fetched file.
    checksum_source
        Where the checksum comes from (the publisher's ``.md5`` file, a pinned commit, ...).
    members
        For a zip archive: ``(member inside the archive, path relative to the dataset folder)``
        pairs to extract; nothing else is extracted.
    target
        For a plain file (``members`` empty): the path relative to the dataset folder; a
        ``.gz`` target is gzip-compressed on write (deterministic, ``mtime=0``).
    """

    url: str
    size: int
    algorithm: Literal["md5", "sha256"]
    checksum: str
    checksum_source: str
    members: tuple[tuple[str, str], ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Attributes
    ----------
    name
        Registry key and folder name.
    description
        One line: what it is.
    files
        Paths relative to the dataset folder that must all exist for it to count as present.
    sources
        What :func:`download` fetches (official archive, or pinned files).
    homepage
        The publisher's page.
    licence
        Terms of use, in short; read the publisher's terms before use.
    reader
        ``reader(folder) -> polars.DataFrame`` returning the canonical frame.
    file_sha256
        Known sha256 digests of installed files (checked after extraction).
    """

    name: str
    description: str
    files: tuple[str, ...]
    sources: tuple[RemoteFile, ...]
    homepage: str
    licence: str
    reader: Callable[[Path], pl.DataFrame]
    file_sha256: tuple[tuple[str, str], ...] = ()
    task: Literal["next-item", "next-basket"] = "next-item"
    titles: Callable[[Path], pl.DataFrame] | None = None
    """``titles(folder) -> frame(item_id, title)`` where the data has item names."""

    @property
    def url(self) -> str:
        """The (first) official download URL (the homepage when there is no public file)."""
        return self.sources[0].url if self.sources else self.homepage


# ---------------------------------------------------------------------------- readers
def _read_ml100k(folder: Path) -> pl.DataFrame:
    return read_movielens(folder / "u.data")


def _read_ml1m(folder: Path) -> pl.DataFrame:
    return read_movielens(folder / "ratings.dat")


_YC_TRAIN = "yoochoose-clicks-100k_train_full.txt.gz"
_YC_TEST = "yoochoose-clicks-100k_test.txt.gz"


def _read_yoochoose_100k(folder: Path) -> pl.DataFrame:
    """Both pre-split parts, concatenated, with a ``split`` column (``"train"``/``"test"``)."""
    train = read_session_log(folder / _YC_TRAIN).with_columns(split=pl.lit("train"))
    test = read_session_log(folder / _YC_TEST).with_columns(split=pl.lit("test"))
    return pl.concat([train, test], how="vertical")


def _read_instacart(folder: Path) -> pl.DataFrame:
    return read_instacart(folder)


def _read_tafeng(folder: Path) -> pl.DataFrame:
    return read_basket_json(_present(folder, "tafeng_merged.json"))  # type: ignore[arg-type]


def _ml100k_titles(folder: Path) -> pl.DataFrame:
    """Titles from RecBole's ``ml-100k.item`` (tab-separated) or GroupLens' ``u.item``."""
    if (folder / "ml-100k.item").is_file():
        df = pl.read_csv(
            folder / "ml-100k.item", separator="\t", quote_char=None, infer_schema=False
        )
        return df.select(
            pl.col(df.columns[0]).cast(pl.Int64).alias("item_id"),
            pl.col(df.columns[1]).cast(pl.String).alias("title"),
        )
    df = pl.read_csv(
        folder / "u.item", separator="|", has_header=False, encoding="latin-1", quote_char=None
    )
    return df.select(
        pl.col(df.columns[0]).cast(pl.Int64).alias("item_id"),
        pl.col(df.columns[1]).cast(pl.String).alias("title"),
    )


def _ml1m_titles(folder: Path) -> pl.DataFrame:
    lines = (folder / "movies.dat").read_bytes().decode("latin-1").splitlines()
    rows = [ln.split("::") for ln in lines if ln]
    return pl.DataFrame(
        {"item_id": [int(r[0]) for r in rows], "title": [r[1] for r in rows]},
        schema={"item_id": pl.Int64, "title": pl.String},
    )


def _present(folder: Path, name: str) -> Path | None:
    """``folder/name`` or its gzipped form ``folder/name.gz``, whichever exists."""
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


# --------------------------------------------------------------------------- registry
_GROUPLENS = "https://files.grouplens.org/datasets/movielens"
_ML_LICENCE = (
    "GroupLens MovieLens usage licence: research use only; acknowledge the data set in "
    "publications (Harper & Konstan 2015, ACM TiiS 5(4)); no redistribution or commercial use "
    "without permission from GroupLens"
)
_SESSION_REC = (
    "https://raw.githubusercontent.com/rn5l/session-rec/"
    "5dcd583cbd8d44703a5248b9a308945f24b91390/data/rsc15/prepared"
)

DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        name="ml-100k",
        description="MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, 1997-98",
        files=("u.data",),
        sources=(
            RemoteFile(
                url=f"{_GROUPLENS}/ml-100k.zip",
                size=4_924_029,
                algorithm="md5",
                checksum="0e33842e24a9c977be4e0107933c0723",
                checksum_source=f"GroupLens {_GROUPLENS}/ml-100k.zip.md5",
                members=(("ml-100k/u.data", "u.data"),),
            ),
        ),
        homepage="https://grouplens.org/datasets/movielens/100k/",
        licence=_ML_LICENCE,
        reader=_read_ml100k,
        titles=_ml100k_titles,
        file_sha256=(
            ("u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
        ),
    ),
    "ml-1m": DatasetSpec(
        name="ml-1m",
        description="MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users on 3,706 movies, 2000-03",
        files=("ratings.dat",),
        sources=(
            RemoteFile(
                url=f"{_GROUPLENS}/ml-1m.zip",
                size=5_917_549,
                algorithm="md5",
                checksum="c4d9eecfca2ab87c1945afe126590906",
                checksum_source=f"GroupLens {_GROUPLENS}/ml-1m.zip.md5",
                members=(("ml-1m/ratings.dat", "ratings.dat"),),
            ),
        ),
        homepage="https://grouplens.org/datasets/movielens/1m/",
        licence=_ML_LICENCE,
        reader=_read_ml1m,
        titles=_ml1m_titles,
    ),
    "yoochoose-100k": DatasetSpec(
        name="yoochoose-100k",
        description=(
            "RecSys Challenge 2015 (YOOCHOOSE) clicks, session-rec's 100k sample, preprocessed "
            "the GRU4Rec way and pre-split by time (last day = test): 70,278 + 13,568 clicks"
        ),
        files=(_YC_TRAIN, _YC_TEST),
        sources=(
            RemoteFile(
                url=f"{_SESSION_REC}/yoochoose-clicks-100k_train_full.txt",
                size=2_146_008,
                algorithm="sha256",
                checksum="9842c90358298ee784fcf0c9dccb2eeb283ab04368e53bdeee896747f4c03e1e",
                checksum_source="file content at rn5l/session-rec commit 5dcd583c (pinned)",
                target=_YC_TRAIN,
            ),
            RemoteFile(
                url=f"{_SESSION_REC}/yoochoose-clicks-100k_test.txt",
                size=414_350,
                algorithm="sha256",
                checksum="380410c606403531019e1ec0b4d192ef90492d594b9b5a91633b860618dd7136",
                checksum_source="file content at rn5l/session-rec commit 5dcd583c (pinned)",
                target=_YC_TEST,
            ),
        ),
        homepage="https://github.com/rn5l/session-rec",
        licence=(
            "RecSys Challenge 2015 (YOOCHOOSE GmbH) data, released for research use; the "
            "session-rec sample carries no separate licence"
        ),
        reader=_read_yoochoose_100k,
    ),
    "instacart": DatasetSpec(
        name="instacart",
        description=(
            "Instacart Online Grocery Shopping 2017: users' order (basket) histories; 49,688 "
            "products (next-basket)"
        ),
        files=("orders.csv", "order_products__prior.csv"),
        sources=(),
        homepage="https://www.kaggle.com/c/instacart-market-basket-analysis/data",
        licence="Instacart, released 'as-is' for non-commercial use (Kaggle login needed)",
        reader=_read_instacart,
        task="next-basket",
        titles=read_instacart_products,
    ),
    "tafeng": DatasetSpec(
        name="tafeng",
        description=(
            "Ta-Feng grocery, Nov 2000 - Feb 2001, as preprocessed by the Next-Basket Reality "
            "Check (users with 3..50 baskets, items seen >= 17 times; no times) (next-basket)"
        ),
        files=("tafeng_merged.json",),
        sources=(),
        homepage="https://github.com/liming-7/A-Next-Basket-Recommendation-Reality-Check",
        licence="public research dataset (academic use); the source repository has no licence",
        reader=_read_tafeng,
        task="next-basket",
    ),
}


# ---------------------------------------------------------------------------- lookup
def _cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "seqrec" / "datasets"


def cache_dir() -> Path:
    """The user's dataset cache: ``$SEQREC_CACHE`` when set, else ``~/.cache/seqrec/datasets``."""
    return _cache_root()


def _labelled_dirs(data_dir: str | Path | None) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    if data_dir is not None:
        out.append((Path(data_dir).expanduser(), "data_dir argument"))
    env = os.environ.get(ENV_DATA, "")
    for part in env.split(os.pathsep):
        if part.strip():
            out.append((Path(part.strip()).expanduser(), f"${ENV_DATA}"))
    cache_label = f"${ENV_CACHE}" if os.environ.get(ENV_CACHE) else "user cache"
    out.append((_cache_root(), cache_label))
    seen: set[Path] = set()
    unique = []
    for path, label in out:
        if path not in seen:
            seen.add(path)
            unique.append((path, label))
    return unique


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The roots searched for datasets, in order.

    Parameters
    ----------
    data_dir
        An explicit root, searched first.

    Returns
    -------
    list of Path
        ``data_dir`` (if given), then each folder of ``$SEQREC_DATA``, then :func:`cache_dir`
        (duplicates removed).
    """
    return [path for path, _ in _labelled_dirs(data_dir)]


def get_spec(name: str) -> DatasetSpec:
    """The registered :class:`DatasetSpec` called ``name``.

    Raises
    ------
    DatasetNotFoundError
        When ``name`` is not registered (the message lists the registered names).
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}; registered datasets: {sorted(DATASETS)}. For your own "
            "files use seqrec.data.read_interactions(path)"
        ) from None


def fetch_hint(name: str) -> str:
    """The command that downloads dataset ``name`` into the user cache."""
    return f'python -c "from seqrec.datasets import download; download({name!r})"'


def locate(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder holding all files of dataset ``name``.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`.
    data_dir
        An explicit root searched first (see :func:`data_dirs`).

    Returns
    -------
    Path
        ``<root>/<name>`` for the first root where every file of the dataset exists.

    Raises
    ------
    DatasetNotFoundError
        When no root holds the dataset; the message lists where it looked (and what was
        missing), the official URL and the command that fetches it.
    """
    spec = get_spec(name)
    looked: list[str] = []
    for root, label in _labelled_dirs(data_dir):
        folder = root / name
        if not folder.is_dir():
            looked.append(f"  {folder} ({label}): no such folder")
            continue
        missing = [f for f in spec.files if _present(folder, f) is None]
        if not missing:
            return folder
        looked.append(f"  {folder} ({label}): lacks {', '.join(missing)}")
    fetch = (
        f"Fetch it into {_cache_root()} with:\n  {fetch_hint(name)}\n"
        f"or load_dataset({name!r}, download=True); or place "
        if spec.sources
        else "It has no public download: place "
    )
    raise DatasetNotFoundError(
        f"dataset {name!r} not found. Looked in:\n"
        + "\n".join(looked)
        + f"\nOfficial source: {spec.url} ({spec.licence}).\n"
        + fetch
        + f"{', '.join(spec.files)} (or .gz) in <root>/{name}/ yourself and set {ENV_DATA}=<root>."
    )


def load_dataset(
    name: str, *, data_dir: str | Path | None = None, download: bool = False
) -> pl.DataFrame:
    """Load a registered dataset as a canonical frame.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`.
    data_dir
        An explicit root searched first (see :func:`data_dirs`).
    download
        When the dataset is not found locally, fetch it into the user cache (verified, see
        :func:`download`). Off by default: nothing touches the network unless asked.

    Returns
    -------
    polars.DataFrame
        The canonical frame of the dataset's reader. ``yoochoose-100k`` is pre-split: its two
        files are concatenated with a ``split`` column (``"train"``/``"test"``); pass the frame
        to :func:`seqrec.split.presplit`.

    Raises
    ------
    DatasetNotFoundError
        When absent and ``download`` is false (the message says how to fetch it).
    """
    try:
        folder = locate(name, data_dir)
    except DatasetNotFoundError:
        if not download:
            raise
        _download(name)
        folder = locate(name, data_dir)
    return get_spec(name).reader(folder)


def load_titles(name: str, *, data_dir: str | Path | None = None) -> pl.DataFrame | None:
    """``item_id, title`` of dataset ``name`` where its files have item names, else None
    (also when the title file is absent)."""
    spec = get_spec(name)
    if spec.titles is None:
        return None
    try:
        return spec.titles(locate(name, data_dir))
    except (OSError, DataError, pl.exceptions.PolarsError, IndexError, ValueError):
        logger.info("no titles for %s", name)
        return None


# -------------------------------------------------------------------------- download
def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | Path, remote: RemoteFile) -> None:
    """Check a fetched file's size and checksum against the registry.

    Raises
    ------
    DataError
        On a size or checksum mismatch (the file is corrupt, truncated or not the published one).
    """
    p = Path(path)
    size = p.stat().st_size
    if size != remote.size:
        raise DataError(
            f"{p.name}: size {size:,} bytes, but {remote.url} is published as {remote.size:,} "
            "bytes; the download is truncated or corrupt, delete it and try again"
        )
    digest = file_digest(p, remote.algorithm)
    if digest != remote.checksum:
        raise DataError(
            f"{p.name}: {remote.algorithm} checksum mismatch (got {digest}, expected "
            f"{remote.checksum} from {remote.checksum_source}); the file is corrupt or not the "
            "published one, delete it and try again"
        )


def _fetch(remote: RemoteFile, dest: Path) -> None:
    logger.info("downloading %s (%.1f MB)", remote.url, remote.size / 1e6)
    try:
        with urllib.request.urlopen(remote.url, timeout=60) as response, dest.open("wb") as out:
            n = 0
            while chunk := response.read(_CHUNK):
                n += len(chunk)
                if n > remote.size:
                    raise DataError(
                        f"{remote.url} sent more than the published {remote.size:,} bytes; "
                        "it is not the registered file"
                    )
                out.write(chunk)
    except OSError as e:  # URLError, HTTPError, timeouts, disk full
        raise DataError(
            f"could not download {remote.url}: {e}; check the network, or fetch it by hand"
        ) from e


def _extract(remote: RemoteFile, fetched: Path, out_dir: Path) -> None:
    if not remote.members:
        target = out_dir / str(remote.target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".gz":
            with fetched.open("rb") as src, target.open("wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
                    shutil.copyfileobj(src, gz, _CHUNK)
        else:
            shutil.copyfile(fetched, target)
        return
    try:
        with zipfile.ZipFile(fetched) as zf:
            names = set(zf.namelist())
            for member, rel in remote.members:
                if member not in names:
                    raise DataError(f"{remote.url} lacks {member}; the archive layout changed")
                target = out_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except zipfile.BadZipFile as e:
        raise DataError(f"{remote.url} is not a valid zip archive: {e}") from e


def download(name: str, cache_dir: str | Path | None = None) -> Path:
    """Fetch dataset ``name`` from its official source into the cache, verified and atomically.

    Each source file is downloaded with :mod:`urllib` into a temporary folder inside the
    cache, checked against its published size and checksum (:func:`verify_file`), and only
    the needed files are extracted; they are moved into ``<cache>/<name>/`` only after every
    check passed. Nothing is fetched when the files are already there.

    Parameters
    ----------
    name
        A key of :data:`DATASETS`.
    cache_dir
        Where to install; default :func:`cache_dir` (``~/.cache/seqrec/datasets``).

    Returns
    -------
    Path
        The dataset folder ``<cache>/<name>``.

    Raises
    ------
    DataError
        Network failure, size/checksum mismatch, or a changed archive layout; nothing is
        installed then.
    """
    spec = get_spec(name)
    if not spec.sources:
        raise DataError(
            f"{name!r} has no public download; get {', '.join(spec.files)} from {spec.homepage} "
            f"({spec.licence}) and place them in <root>/{name}/ with {ENV_DATA}=<root>"
        )
    root = Path(cache_dir).expanduser() if cache_dir is not None else _cache_root()
    folder = root / name
    if all((folder / f).is_file() for f in spec.files):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        out_dir = tmp / "out"
        out_dir.mkdir()
        for i, remote in enumerate(spec.sources):
            fetched = tmp / f"source-{i}"
            _fetch(remote, fetched)
            verify_file(fetched, remote)
            _extract(remote, fetched, out_dir)
            fetched.unlink()
        for rel, sha in spec.file_sha256:
            got = file_digest(out_dir / rel, "sha256")
            if got != sha:
                raise DataError(f"{name}/{rel}: sha256 {got} differs from the registered {sha}")
        missing = [f for f in spec.files if not (out_dir / f).is_file()]
        if missing:  # pragma: no cover - registry inconsistency
            raise DataError(f"the sources of {name!r} did not provide {missing}")
        folder.mkdir(parents=True, exist_ok=True)
        for rel in spec.files:
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(out_dir / rel, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("installed %s in %s", name, folder)
    return folder


_download = download


__all__ = [
    "DATASETS",
    "ENV_CACHE",
    "ENV_DATA",
    "DatasetSpec",
    "RemoteFile",
    "cache_dir",
    "data_dirs",
    "download",
    "fetch_hint",
    "file_digest",
    "get_spec",
    "load_dataset",
    "load_titles",
    "locate",
    "verify_file",
]
