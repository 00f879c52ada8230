"""Experiment files shared by the CLI and experiment tests, and the helpers that write them
and read a search's tables back."""

from __future__ import annotations

import csv
from pathlib import Path

TINY = """\
name = "tiny"
seed = 0

[data]
dataset = "synthetic"

[data.synthetic]
n_sessions = 150
n_items = 20
seed = 1

[preprocess]
min_item_support = 1

[split]
method = "time"
test_days = 6
valid_days = 6

[model]
name = "gru4rec"
layers = [8]

[objective]
n_sample = 0

[train]
epochs = 1
batch_size = 16
progress = false
"""
"""A synthetic GRU4Rec experiment that runs in about a second."""

TINY_BASKETS = """\
name = "nb"
[data]
dataset = "synthetic-baskets"
[data.synthetic_baskets]
n_users = 120
n_items = 60
mean_baskets = 6.0
max_baskets = 12
mean_size = 4.0
n_staples = 4.0
[preprocess]
min_session_length = 1
min_item_support = 1
[split]
method = "leave-one-out"
[model]
name = "tifu-knn"
"""
"""A synthetic next-basket experiment (TIFU-KNN) that runs in about a second."""


def write_experiment(
    tmp_path: Path, extra: str = "", base: str = TINY, name: str = "exp.toml"
) -> Path:
    """``base`` + ``extra`` (e.g. a ``[grid]`` table) written to ``tmp_path / name``."""
    p = tmp_path / name
    p.write_text(base + "\n" + extra)
    return p


def summary_rows(root: Path, name: str = "summary.csv") -> list[dict[str, str]]:
    """The rows of a search's ``summary.csv`` (or ``points.csv``) under ``root``."""
    with (root / name).open() as f:
        return list(csv.DictReader(f))
