"""Helpers of the serve tests: tiny saved models and a real uvicorn server on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import polars as pl

from seqrec.data.synthetic import synthetic_sessions
from seqrec.models import MODELS
from seqrec.recommender import Recommender
from seqrec.train import TrainConfig


def synthetic_frame() -> pl.DataFrame:
    return synthetic_sessions(n_sessions=300, n_items=40, seed=0)


def save_example(name: str, path: Path, df: pl.DataFrame | None = None, **meta: object) -> Path:
    """A model of ``name`` (its spec's example config, one epoch) fitted on synthetic data
    (or ``df``), saved to ``path``."""
    spec = MODELS[name]
    ex = spec.example
    model = spec.config.model_validate({"name": name, **ex.get("model", {})})
    objective = None
    if spec.objective is not None:
        objective = spec.objective.model_validate(ex.get("objective", {}))
    train = TrainConfig.model_validate(
        {"progress": False, "device": "cpu", **ex.get("train", {}), "epochs": 1}
    )
    rec = Recommender(model, objective, train, seed=0).fit(synthetic_frame() if df is None else df)
    rec.save(path, metadata=meta or None)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    model_dir: Path,
    args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[str]:
    """``seqrec serve MODEL_DIR`` in a subprocess on a free loopback port; yields its base
    URL once ``/readyz`` answers, and stops it (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "seqrec.cli", "serve", str(model_dir), "--port", str(port), *args]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"seqrec serve exited {proc.returncode}: {proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"seqrec serve did not get ready in {timeout} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
