"""Settings of ``seqrec serve`` (kept apart from :mod:`seqrec.serve` so that building the CLI
parser imports neither torch nor FastAPI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeConfig(BaseModel):
    """Settings of a server (the ``seqrec serve`` options; defaults here).

    Limits bound what one request may ask; a request over a limit gets a 413 (body) or 422
    (everything else) with a message naming the limit and its option.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    device: str = "cpu"
    threads: int | None = Field(1, ge=1)
    """torch CPU threads in each worker (None: leave torch's default)."""
    batch_window_ms: float = Field(0.0, ge=0, le=1000)
    """How long the micro-batcher waits for more requests after the first one. 0 (the
    default): score whatever has arrived — while a batch is scored the next one gathers by
    itself, and uvloop's timers are millisecond-grained, so any window adds >= 1 ms to a
    lone request (measured in benchmarks/README.md)."""
    max_batch_size: int = Field(64, ge=1, le=100_000)
    """Most queries scored in one batch (a larger single request is scored alone)."""
    default_k: int = Field(20, ge=1)
    max_k: int = Field(100, ge=1)
    max_queries: int = Field(256, ge=1)
    max_session_length: int = Field(1_000, ge=1)
    max_exclude: int = Field(1_000, ge=0)
    max_candidates: int = Field(10_000, ge=0)
    max_baskets: int = Field(200, ge=0)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_search_results: int = Field(50, ge=1)
    titles: str | None = None
    """A titles file (u.item, movies.dat, RecBole .item, Instacart products.csv, or a CSV/TSV
    with an id column and a title/name column); None: the artifact's ``item_titles``
    metadata, if any, else no titles (ids are shown)."""
    allow_reload: bool = False
    reload_root: str | None = None
    """With reload on: a request may name a directory directly under this root; without it
    only the served directory itself is reloaded."""
    workers: int = Field(1, ge=1)
    """How many worker processes serve (informational: an HTTP reload needs 1)."""


__all__ = ["ServeConfig"]
