"""Files of experiments and runs: reading TOML/YAML, compact TOML, atomic text, JSON-safe values.

Also the names of the files in a run directory (:data:`RESOLVED_CONFIG`, :data:`METRICS_FILE`,
:data:`LOG_FILE`, :data:`ARTIFACT_DIR`), of a grid's :data:`SUMMARY_FILE` and
:data:`POINTS_FILE`, of a failed grid point's :data:`ERROR_FILE`, where an unfinished
run lives (:func:`partial_dir`) and the removal of temporaries left by killed processes
(:func:`remove_stale`).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seqrec._io import atomic_file, remove_path, remove_stale
from seqrec.exceptions import ConfigError

RESOLVED_CONFIG = "config.resolved.toml"
METRICS_FILE = "metrics.json"
LOG_FILE = "log.txt"
ARTIFACT_DIR = "artifact"
SUMMARY_FILE = "summary.csv"
POINTS_FILE = "points.csv"
ERROR_FILE = "error.json"
QUERIES_DIR = "queries"
"""``queries/<part>.parquet`` in a run directory: the per-query values of that part's
evaluation (:attr:`seqrec.evaluate.EvalReport.queries`), for paired tests between runs."""
PARTIAL_SUFFIX = ".partial"


def partial_dir(out_dir: Path) -> Path:
    """Where the run ``out_dir`` is written until it finishes: the hidden sibling
    ``.<name>.partial`` (a stable path, so a killed run can be continued)."""
    return out_dir.with_name(f".{out_dir.name}{PARTIAL_SUFFIX}")


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw mapping of a ``.toml``, ``.yaml`` or ``.yml`` experiment file.

    Raises
    ------
    ConfigError
        Missing file, a directory, unparsable content, a non-mapping top level or another
        suffix.
    """
    if not path.exists():
        raise ConfigError(f"experiment file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; pass an experiment file (.toml or .yaml)")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not a text file (byte {e.start} is not UTF-8); an experiment file is "
            "TOML or YAML text"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read the experiment file {path}: {e.strerror or e}") from None
    if suffix == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        raw = {} if raw is None else raw
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    else:
        raise ConfigError(
            f"{path}: unknown experiment file type {suffix!r}; use .toml, .yaml or .yml"
        )
    return raw


def _bracket_depth(line: str) -> int:
    """Net ``[`` minus ``]`` outside TOML strings on one line."""
    depth, quote, escaped = 0, "", False
    for ch in line:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth


def compact_toml(text: str, width: int = 100) -> str:
    """Put the arrays tomli_w spreads over many lines back on one line when they fit.

    Returns ``text`` unchanged unless the compact form parses to the same data.
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if " = " in line and line.rstrip().endswith("[") and _bracket_depth(line) > 0:
            depth, j, parts = _bracket_depth(line), i, [line.rstrip()]
            while depth > 0 and j + 1 < len(lines):
                j += 1
                parts.append(lines[j].strip())
                depth += _bracket_depth(lines[j])
            joined = " ".join(parts).replace("[ ", "[").replace(", ]", "]")
            if len(joined) <= width:
                out.append(joined)
                i = j + 1
                continue
        out.append(line)
        i += 1
    compact = "\n".join(out) + "\n"
    try:
        same = tomllib.loads(compact) == tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        same = False
    return compact if same else text


def drop_none(obj: Any) -> Any:
    """A copy of nested dicts/lists without the None values of dicts (TOML has no null)."""
    if isinstance(obj, dict):
        return {k: drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [drop_none(v) for v in obj]
    return obj


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to the temporary sibling ``.<name>.tmp-<pid>``, flush it to disk and
    rename it onto ``path`` (readers see the old or the new file, never a part of one)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_parquet_atomic(path: Path, frame: Any) -> None:
    """:func:`write_text_atomic` for a polars frame written as Parquet (zstd)."""
    with atomic_file(path) as tmp:
        frame.write_parquet(tmp, compression="zstd")


__all__ = [
    "ARTIFACT_DIR",
    "QUERIES_DIR",
    "LOG_FILE",
    "METRICS_FILE",
    "PARTIAL_SUFFIX",
    "RESOLVED_CONFIG",
    "SUMMARY_FILE",
    "POINTS_FILE",
    "ERROR_FILE",
    "compact_toml",
    "drop_none",
    "json_safe",
    "partial_dir",
    "read_config_file",
    "remove_path",
    "remove_stale",
    "write_parquet_atomic",
    "write_text_atomic",
]
