"""Shared fixtures: the real-data folder (from ``SEQREC_DATA``) and MovieLens-100K."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from seqrec.data.readers import read_movielens

# `seqrec run` grids run in one process in tests (the default, --jobs auto, spawns a worker
# per core: seconds of start-up per test); tests of --jobs pass it explicitly.
os.environ.setdefault("SEQREC_JOBS", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding the real datasets (``<dir>/ml-100k/u.data``, ...).

    Taken from the ``SEQREC_DATA`` environment variable (its first entry); tests using it are
    skipped when it is unset or not a folder.
    """
    env = os.environ.get("SEQREC_DATA", "").split(os.pathsep)[0].strip()
    if not env:
        pytest.skip("real-data test: set SEQREC_DATA to the folder holding ml-100k/ etc.")
    path = Path(env).expanduser()
    if not path.is_dir():
        pytest.skip(f"real-data test: SEQREC_DATA={env} is not a folder")
    return path


@pytest.fixture(scope="session")
def ml100k(data_dir: Path) -> pl.DataFrame:
    """MovieLens-100K ratings as a canonical frame (skipped when ``u.data`` is absent)."""
    path = data_dir / "ml-100k" / "u.data"
    if not path.is_file():
        pytest.skip(f"real-data test: {path} not found")
    return read_movielens(path)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small models train much faster, and steadier on a
    busy machine, than on two); the count is restored after. Test modules use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
