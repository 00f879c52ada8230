"""Small file-system helpers shared by the writers of run directories, saved models and batch
output: atomic swaps, fsync, modes from the umask, and the removal of the temporaries that a
killed process left behind.

Every temporary seqrec writes beside its destination is named ``.<name>.<kind>-<pid>``
(``kind``: ``tmp``, ``old``, ``parts``), so the next writer to the same place can prove it
dead (:func:`remove_stale`: the pid is not alive) and remove it, and never touches the
temporaries of a live process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it for longer than a call)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give ``path`` (and, for a directory, everything in it) the modes a plain ``open`` /
    ``mkdir`` would: 0666 / 0777 minus the umask. ``tempfile.mkdtemp`` (0700) and
    safetensors (0600) are stricter, which leaves other accounts unable to read a model."""
    mask = current_umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if p.is_symlink():
            continue
        with contextlib.suppress(OSError):
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours, or another account's: then its files are kept)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its files
    return True


def remove_path(path: Path) -> None:
    """Remove a file, link or directory tree (missing is fine)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale(parent: Path, prefixes: Sequence[str]) -> list[Path]:
    """Remove the entries of ``parent`` whose names start with one of ``prefixes`` and end in
    ``-<pid>`` of a process that is not alive: the temporaries of killed processes.

    Entries without a pid suffix are removed too (older seqrec versions named some that
    way; the prefixes are specific to one destination). Returns what was removed.
    """
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        if not any(p.name.startswith(pre) for pre in prefixes):
            continue
        tail = p.name.rpartition("-")[2]
        if tail.isdigit() and pid_alive(int(tail)):
            continue
        remove_path(p)
        removed.append(p)
    return removed


_TEMP_NAME = re.compile(r"^\..+\.(tmp|old|parts)-(\d+)$")


def remove_dead_temporaries(parent: Path) -> list[Path]:
    """Remove every ``.<name>.tmp-<pid>`` / ``.old-<pid>`` / ``.parts-<pid>`` entry of
    ``parent`` whose process is dead, whatever ``<name>`` (the next command writing into a
    folder cleans up after any killed seqrec writer there). Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP_NAME.match(p.name)
        if m is None or pid_alive(int(m.group(2))):
            continue
        remove_path(p)
        removed.append(p)
    return removed


def stale_prefixes(dest: Path) -> list[str]:
    """The temporary-name prefixes of the writers of ``dest`` (see the module docstring)."""
    return [f".{dest.name}.tmp-", f".{dest.name}.old-", f".{dest.name}.parts-"]


def temp_dir_for(dest: Path) -> Path:
    """A fresh empty directory ``.<name>.tmp-<pid>`` beside ``dest`` (mode from the umask),
    after removing the dead temporaries of earlier writers of ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest.parent, stale_prefixes(dest))
    remove_dead_temporaries(dest.parent)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    remove_path(tmp)  # this process's own earlier attempt
    tmp.mkdir()
    return tmp


def replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished directory ``tmp`` to ``dest`` atomically.

    An existing ``dest`` is renamed aside first and removed only after the swap, so a reader
    sees either the old or the new directory, never a half-written one. A kill between the
    two renames leaves ``.<name>.old-<pid>``, which the next writer of ``dest`` removes.
    """
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        remove_path(old)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    fsync_path(dest.parent)


def fsync_path(path: Path) -> None:
    """fsync one file or directory (errors of file systems that refuse it are ignored)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield the temporary sibling ``.<name>.tmp-<pid>`` for the block to write; then flush
    it to disk, give it the umask's mode and rename it onto ``path`` (readers see the old or
    the new file, never a part of one). On any exception the temporary is removed."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fsync_path(tmp)
        apply_umask(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync_dir(path: Path) -> None:
    """fsync every file directly in ``path`` and the directory itself, so that a rename of
    ``path`` after it is durable (survives a power loss, not only a kill)."""
    for p in path.iterdir():
        if p.is_file():
            fsync_path(p)
    fsync_path(path)


__all__ = [
    "apply_umask",
    "atomic_file",
    "current_umask",
    "fsync_dir",
    "fsync_path",
    "pid_alive",
    "remove_dead_temporaries",
    "remove_path",
    "remove_stale",
    "replace_dir",
    "stale_prefixes",
    "temp_dir_for",
]
