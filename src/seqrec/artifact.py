"""Saved models: a directory of data files, written atomically, checked on load.

::

    <dir>/
      config.json         the Recommender config (model, objective, train, seed)
      model.safetensors   the model's tensors (a sparse matrix as its CSR arrays)
      state.json          the model's small JSON state (which fields are arrays/CSR/scalars)
      vocab.json          external item ids in index order
      metadata.json       versions, creation time, fit info, history, and the sha256 of
                          every other file (verified on load)

Loading never executes code from the directory (rule 8): JSON and safetensors only. The
code here never names a model: it stores what :func:`seqrec.models.base.model_state` gives.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from seqrec._io import apply_umask, fsync_dir, replace_dir, temp_dir_for
from seqrec.data.vocab import Vocabulary
from seqrec.exceptions import ArtifactError

ARTIFACT_VERSION = 2
FILES = ("config.json", "model.safetensors", "state.json", "vocab.json")
METADATA = "metadata.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Artifact:
    """What a model directory holds, read and verified."""

    config: dict[str, Any]
    tensors: dict[str, Tensor]
    state: dict[str, Any]
    vocab: Vocabulary
    metadata: dict[str, Any]


def save_artifact(
    path: str | Path,
    *,
    config_json: str,
    tensors: dict[str, Tensor],
    state: dict[str, Any],
    vocab: Vocabulary,
    metadata: dict[str, Any],
    seqrec_version: str,
) -> Path:
    """Write a model directory atomically (a temp dir renamed into place)."""
    path = Path(path)
    tmp = temp_dir_for(path)  # .<name>.tmp-<pid>; dead writers' temporaries removed first
    try:
        (tmp / "config.json").write_text(config_json)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            str(tmp / "model.safetensors"),
        )
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
        vocab.save(tmp / "vocab.json")
        meta = {
            "artifact_version": ARTIFACT_VERSION,
            "seqrec_version": seqrec_version,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            **metadata,
            "files": {f: _sha256(tmp / f) for f in FILES},
        }
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=float))
        apply_umask(tmp)
        fsync_dir(tmp)
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_artifact(path: str | Path) -> Artifact:
    """Read and verify a model directory; every problem is an :class:`ArtifactError`
    naming the file."""
    path = Path(path)
    needed = [*FILES, METADATA]
    if not path.is_dir():
        raise ArtifactError(f"no saved model at {path}: expected a directory with {needed}")
    missing = [f for f in needed if not (path / f).exists()]
    if missing:
        raise ArtifactError(f"{path} is not a complete seqrec model: missing {missing}")
    try:
        meta = json.loads((path / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(
            f"{path / METADATA}: unreadable ({_short(e)}); the model directory is damaged: "
            "save or train the model again"
        ) from None
    if not isinstance(meta, dict):
        raise ArtifactError(
            f"{path / METADATA}: expected a JSON object, got {type(meta).__name__}; the model "
            "directory is damaged: save or train the model again"
        )
    if meta.get("artifact_version") != ARTIFACT_VERSION:
        raise ArtifactError(
            f"{path}: artifact version {meta.get('artifact_version')} is not supported "
            f"(expected {ARTIFACT_VERSION}); save the model again with this seqrec"
        )
    sums = meta.get("files")
    if not isinstance(sums, dict):
        raise ArtifactError(f"{path / METADATA}: has no file checksums")
    for f in FILES:
        if not (path / f).is_file():
            raise ArtifactError(f"{path / f}: not a file; the model directory is damaged")
        if sums.get(f) != _sha256(path / f):
            raise ArtifactError(
                f"{path / f}: checksum mismatch (the file was changed or damaged after saving)"
            )
    config = _json_object(path / "config.json")
    state = _json_object(path / "state.json")
    try:
        tensors = load_file(str(path / "model.safetensors"))
    except (OSError, SafetensorError, ValueError, RuntimeError) as e:
        raise ArtifactError(f"{path / 'model.safetensors'}: unreadable ({_short(e)})") from None
    try:
        vocab = Vocabulary.load(path / "vocab.json")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ArtifactError(
            f"{path / 'vocab.json'}: not a seqrec vocabulary ({_short(e)})"
        ) from None
    return Artifact(config=config, tensors=tensors, state=state, vocab=vocab, metadata=meta)


def _short(e: BaseException, limit: int = 200) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_object(p: Path) -> dict[str, Any]:
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"{p}: unreadable ({_short(e)})") from None
    if not isinstance(obj, dict):
        raise ArtifactError(f"{p}: expected a JSON object, got {type(obj).__name__}")
    return obj
