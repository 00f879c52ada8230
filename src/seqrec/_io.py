"""Small file-system helpers shared by the writers of run directories and saved models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished directory ``tmp`` to ``dest`` atomically.

    An existing ``dest`` is renamed aside first and removed only after the swap, so a reader
    sees either the old or the new directory, never a half-written one.
    """
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def fsync_dir(path: Path) -> None:
    """fsync every file directly in ``path`` and the directory itself, so that a rename of
    ``path`` after it is durable (survives a power loss, not only a kill)."""
    for p in path.iterdir():
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
