"""HTTP serving: a FastAPI app over a saved model directory (``seqrec serve MODEL_DIR``).

Every request is answered through :meth:`Recommender.recommend_queries` — the code path of
``seqrec recommend``, batch files and evaluation — so the server can never drift from them.

* ``POST /v1/recommend``: one query or a list (``queries``); ranked items and scores in
  external ids; unknown ids ignored and listed; an empty history flagged.
* ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and warmed), ``GET /v1/model``
  (name, config, vocabulary, training-data fingerprint, metrics, versions).
* ``GET /v1/items?q=``: search the catalogue by title (for the demo page at ``/demo``).
* ``POST /v1/admin/reload``: off by default; guarded by a token; swaps in the configured
  model directory (or one named directly under a configured root) atomically.
* ``/docs``, ``/openapi.json``: the API, generated from the pydantic models below.

Requests that arrive together are scored as one batch (:class:`MicroBatcher`: a time window
and a maximum batch size) on one scoring thread, so throughput grows with load. Limits on
the body size (413), the number of queries, the history, exclusion and candidate lengths and
``k`` (422) come from :class:`ServeConfig`; each error message says what to change. No
endpoint reads or writes a file named by a request.

Needs the ``serve`` extra (``pip install 'seqrec[serve]'``: fastapi, uvicorn, orjson).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import gzip
import hashlib
import hmac
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from seqrec.data.query import Query
from seqrec.exceptions import ConfigError, DataError, RequestError, SeqrecError
from seqrec.serve_config import ServeConfig

try:
    import fastapi
    from fastapi import FastAPI, Request
    from fastapi.responses import RedirectResponse, Response
except ImportError:  # pragma: no cover - the serve extra is not installed
    fastapi = None  # type: ignore[assignment]

try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - orjson is in the serve extra

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, default=_plain).encode()


def _plain(x: Any) -> Any:  # pragma: no cover - the json fallback only
    return x.tolist() if isinstance(x, np.ndarray) else x


logger = logging.getLogger(__name__)

_STATIC = Path(__file__).parent / "static"
_INT64 = 2**63 - 1


def _json_integer(v: Any) -> Any:
    """JSON has one number type: ``3.0`` is the integer 3 (as JSON Schema says); a
    fraction or a boolean is not an integer."""
    if isinstance(v, bool):
        raise ValueError("expected an integer (or a string id), got a boolean")
    if isinstance(v, float):
        if v.is_integer() and abs(v) <= 2**53:
            return int(v)
        raise ValueError("expected an integer (or a string id), got a number with a fraction")
    return v


ItemId = Annotated[
    Annotated[StrictInt, Field(ge=-_INT64 - 1, le=_INT64)] | StrictStr,
    BeforeValidator(_json_integer),
]
"""An external item id: a JSON integer (64-bit) or a string."""


# --------------------------------------------------------------------------- config
# ServeConfig lives in seqrec.serve_config (no torch/FastAPI import: `seqrec --help` stays fast)


# ---------------------------------------------------------------- request / response
class QueryIn(BaseModel):
    """One query: a session's items (oldest first), or a user's baskets (next-basket
    models), with optional exclusions and a candidate set, in external ids."""

    model_config = ConfigDict(extra="forbid", strict=True)
    query_id: ItemId | None = Field(None, description="echoed back in the result")
    items: list[ItemId] = Field(
        default_factory=list, description="the session so far, oldest first"
    )
    baskets: list[list[ItemId]] | None = Field(
        None, description="next-basket models: the user's earlier baskets, oldest first"
    )
    context: list[list[float]] | None = Field(
        None,
        description="next-basket models with order context: one row per basket "
        "(the model's context_names, e.g. day of week, hour, days since the prior order)",
    )
    user_id: ItemId | None = None
    exclude: list[ItemId] = Field(default_factory=list, description="never recommend these")
    candidates: list[ItemId] | None = Field(
        None, description="recommend only among these (null: every item)"
    )


class RecommendRequest(QueryIn):
    """One query (its fields at the top level) or a list of queries (``queries``);
    ``k``, ``exclude_seen`` and ``titles`` apply to all of them."""

    queries: list[QueryIn] | None = Field(
        None,
        description="several queries in one request (then leave the top-level query fields empty)",
    )
    k: Annotated[StrictInt, Field(ge=1), BeforeValidator(_json_integer)] | None = Field(
        None, description="items per query (default: the server's)"
    )
    exclude_seen: bool = Field(False, description="never recommend an item of the history")
    titles: bool = Field(False, description="add the items' titles (when the server has them)")


class QueryResult(BaseModel):
    query_id: ItemId | None = None
    items: list[ItemId] = Field(description="recommended items, best first")
    scores: list[float] = Field(description="their scores (higher is better)")
    titles: list[str | None] | None = None
    unknown_items: list[ItemId] = Field(
        description="ids of the request not known to the model (ignored)"
    )
    empty_history: bool = Field(
        description="no known item was left in the history: the model's empty-history answer"
    )


class RecommendResponse(BaseModel):
    model: str
    model_version: str
    results: list[QueryResult]


class ItemHit(BaseModel):
    item_id: ItemId
    title: str | None


class ItemsResponse(BaseModel):
    items: list[ItemHit]
    has_titles: bool


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(
        None,
        description="a directory directly under the server's --reload-root (null: the served directory)",
        max_length=255,
    )


class ErrorResponse(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None


# ------------------------------------------------------------------------- titles
_TITLE_COLUMNS = ("title", "name", "product_name", "movie_title", "item_name")
_ID_COLUMNS = ("item_id", "product_id", "movie_id", "id", "itemid")


def read_titles(path: str | Path) -> dict[str, str]:
    """Item titles from a file: ``{str(external id): title}``.

    Understands MovieLens ``u.item`` (``|``-separated, Latin-1) and ``movies.dat``
    (``::``), RecBole atomic ``.item`` files (typed header such as ``item_id:token``),
    Instacart ``products.csv`` and any CSV/TSV (optionally gzipped) with a header naming an
    id column (item_id, product_id, movie_id, id) and a title column (title, name,
    product_name, movie_title).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"titles file not found: {p}")
    raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # MovieLens files are Latin-1
    lines = text.splitlines()
    if not lines:
        raise DataError(f"{p}: the titles file is empty")
    first = lines[0]
    if "::" in first:  # movies.dat: id::title::genres
        return {a: b for a, b, *_ in (ln.split("::") for ln in lines if ln.count("::") >= 1)}
    if "|" in first and "\t" not in first:  # u.item: id|title|date|...
        return {a: b for a, b, *_ in (ln.split("|") for ln in lines if ln.count("|") >= 1)}
    delim = "\t" if "\t" in first else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    header = [h.split(":")[0].strip().lower() for h in rows[0]]
    id_col = next((header.index(c) for c in _ID_COLUMNS if c in header), None)
    title_col = next((header.index(c) for c in _TITLE_COLUMNS if c in header), None)
    if id_col is None or title_col is None:
        raise DataError(
            f"{p}: no id and title columns in the header {rows[0]}; name them e.g. item_id "
            "and title (or give a MovieLens u.item / movies.dat file)"
        )
    width = max(id_col, title_col)
    return {r[id_col]: r[title_col] for r in rows[1:] if len(r) > width}


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A loaded, warmed model with what serving needs; swapped whole on reload."""

    rec: Any
    path: Path
    version: str
    info: dict[str, Any]
    titles: np.ndarray | None
    """Titles aligned with the vocabulary's indices - 1 (or None)."""
    search_keys: np.ndarray
    """Lower-case titles (ids where none) for search, aligned the same way."""
    int_ids: bool

    @property
    def name(self) -> str:
        return str(self.rec.model.name)

    @property
    def task(self) -> str:
        return str(self.rec.spec.task)

    @property
    def n_items(self) -> int:
        return len(self.rec.vocab_)


def _model_version(meta: dict[str, Any]) -> str:
    sums = json.dumps(meta.get("files", {}), sort_keys=True) + str(meta.get("created"))
    return hashlib.sha256(sums.encode()).hexdigest()[:12]


def load_model(
    path: str | Path, *, device: str = "cpu", titles: dict[str, str] | None = None
) -> LoadedModel:
    """Load and warm a model directory for serving (``titles``: explicit titles, else the
    artifact's ``item_titles`` metadata)."""
    from seqrec.recommender import Recommender

    path = Path(path)
    rec = Recommender.load(path, device=device)
    meta = getattr(rec, "metadata_", {})
    if titles is None and isinstance(meta.get("item_titles"), dict):
        titles = {str(k): str(v) for k, v in meta["item_titles"].items()}
    ids = rec.vocab_.ids
    id_str = ids.astype(str)
    title_arr = None
    if titles:
        title_arr = np.asarray([titles.get(i) for i in id_str.tolist()], dtype=object)
        n_found = int(sum(t is not None for t in title_arr))
        logger.info("titles for %d of %d items", n_found, len(ids))
    keys = np.char.lower(
        np.where(title_arr == None, id_str, title_arr).astype(str)  # noqa: E711
        if title_arr is not None
        else id_str
    )
    version = _model_version(meta)
    info = {
        "model": rec.model.name,
        "task": rec.spec.task,
        "model_version": version,
        "config": rec.config.model_dump(mode="json"),
        "n_items": len(rec.vocab_),
        "id_type": "str" if ids.dtype.kind == "U" else "int",
        "data_fingerprint": meta.get("fit", {}).get("data_fingerprint"),
        "fit": meta.get("fit", {}),
        "metrics": meta.get("metrics", {}),
        "experiment": meta.get("experiment"),
        "seqrec_version": meta.get("seqrec_version"),
        "created": meta.get("created"),
        "has_titles": title_arr is not None,
    }
    loaded = LoadedModel(
        rec=rec,
        path=path,
        version=version,
        info=info,
        titles=title_arr,
        search_keys=keys,
        int_ids=ids.dtype.kind != "U",
    )
    if rec.spec.task == "next-basket":
        n_ctx = len(getattr(rec.model_, "context_names", ()) or ())
        ctx = [[0.0] * n_ctx] if n_ctx else None
        warm = [
            Query(baskets=[[ids[0]]], context=ctx),
            Query(baskets=[], context=[] if n_ctx else None),
        ]
    else:
        warm = [Query(items=[ids[0]]), Query(items=[])]
    with torch.inference_mode():  # warm up: the first forward pass allocates
        rec.recommend_queries(warm, k=1)
    return loaded


# --------------------------------------------------------------------- the batcher
@dataclass(eq=False)
class _Job:
    model: LoadedModel
    queries: list[Query]
    unknown: list[list[Any]]
    k: int
    exclude_seen: bool
    future: asyncio.Future[list[Any]]


def score_jobs(jobs: Sequence[_Job]) -> list[list[Any] | BaseException]:
    """Score the queries of many jobs: one :meth:`Recommender.recommend_queries` call per
    (model, k, exclude_seen) group — usually one for the whole batch."""
    groups: dict[tuple[int, int, bool], list[int]] = {}
    for j, job in enumerate(jobs):
        groups.setdefault((id(job.model), job.k, job.exclude_seen), []).append(j)
    out: list[list[Any] | BaseException] = [[] for _ in jobs]
    for (_, k, exclude_seen), members in groups.items():
        model = jobs[members[0]].model
        queries = [q for j in members for q in jobs[j].queries]
        try:
            with torch.inference_mode():
                recs = model.rec.recommend_queries(queries, k, exclude_seen=exclude_seen)
        except BaseException as e:  # handed to the requests of this group
            for j in members:
                out[j] = e
            continue
        start = 0
        for j in members:
            n = len(jobs[j].queries)
            out[j] = recs[start : start + n]
            start += n
    return out


class MicroBatcher:
    """Collects the queries of requests arriving together and scores them as one batch.

    After the first request of a batch arrives, it waits up to ``window_s`` for more (or
    until ``max_batch_size`` queries are in), then scores them on its one scoring thread.
    While a batch is scored, newcomers queue up and form the next batch, so batches grow
    with load. Each request keeps the model it arrived under: a reload during a batch
    changes nothing for requests already queued.
    """

    def __init__(self, window_s: float, max_batch_size: int) -> None:
        self.window_s = window_s
        self.max_batch_size = max_batch_size
        self._queue: asyncio.Queue[_Job] | None = None
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.n_batches = 0
        self.n_queries = 0

    async def start(self, threads: int | None) -> None:
        self._queue = asyncio.Queue()
        self._arrived = asyncio.Event()

        def init() -> None:  # the scoring thread's own torch settings
            if threads is not None:
                torch.set_num_threads(threads)

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="seqrec-score", initializer=init)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    async def submit(
        self,
        model: LoadedModel,
        queries: list[Query],
        unknown: list[list[Any]],
        k: int,
        exclude_seen: bool,
    ) -> list[Any]:
        if self._task is None:  # an app run without its lifespan (some test clients)
            await self.start(None)
        assert self._queue is not None and self._arrived is not None
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(model, queries, unknown, k, exclude_seen, fut))
        self._arrived.set()
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None and self._arrived is not None
        queue, arrived = self._queue, self._arrived
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            n = len(jobs[0].queries)
            deadline = loop.time() + self.window_s
            while n < self.max_batch_size:
                while n < self.max_batch_size and not queue.empty():
                    job = queue.get_nowait()
                    jobs.append(job)
                    n += len(job.queries)
                remaining = deadline - loop.time()
                if n >= self.max_batch_size or remaining <= 0:
                    break
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), remaining)
                except TimeoutError:
                    pass
            jobs = [j for j in jobs if not j.future.done()]  # clients that went away
            if not jobs:
                continue
            try:
                results = await loop.run_in_executor(self._pool, score_jobs, jobs)
            except BaseException as e:  # pragma: no cover - the pool itself failed
                results = [e] * len(jobs)
            self.n_batches += 1
            self.n_queries += n
            for job, res in zip(jobs, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(res, BaseException):
                    job.future.set_exception(res)
                else:
                    job.future.set_result(res)


# ------------------------------------------------------------------ request checks
def _known_ids(model: LoadedModel, ids: Sequence[Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` in the vocabulary's type and the bool mask of those the model knows
    (vectorised). As in the library, an integer-id model takes JSON integers only; a
    string-id model reads integers as their decimal text."""
    vocab = model.rec.vocab_
    if not len(ids):
        return np.zeros(0, dtype=np.int64 if model.int_ids else str), np.zeros(0, dtype=bool)
    if not model.int_ids:
        arr = np.asarray([i if isinstance(i, str) else str(i) for i in ids])
        return arr, vocab.lookup(arr) > 0
    try:
        arr = np.asarray(ids, dtype=np.int64)
    except (ValueError, TypeError):
        bad = next(i for i in ids if isinstance(i, str))
        raise RequestError(
            f"{where}: this model's item ids are integers, got the string {bad[:60]!r}; send "
            "JSON numbers (GET /v1/model says id_type)",
            status=422,
        ) from None
    return arr, vocab.lookup(arr) > 0


def _limit(n: int, limit: int, what: str, option: str) -> None:
    if n > limit:
        raise RequestError(
            f"{what} has {n:,} entries; this server accepts at most {limit:,} "
            f"(send fewer, or start the server with a larger {option})",
            status=422,
        )


def build_queries(
    req: RecommendRequest, model: LoadedModel, cfg: ServeConfig
) -> tuple[list[Query], list[list[Any]], int]:
    """Check a request against the limits and the model and turn it into Queries (known
    ids only) with the unknown ids of each; returns ``(queries, unknown, k)``."""
    single = (
        bool(req.items)
        or req.baskets is not None
        or bool(req.exclude)
        or req.candidates is not None
        or req.query_id is not None
        or req.user_id is not None
    )
    if req.queries is not None and single:
        raise RequestError(
            "give either one query (items, baskets, exclude, candidates at the top level) or "
            "a list in 'queries', not both",
            status=422,
        )
    if req.queries is None and "queries" in req.model_fields_set:
        raise RequestError("queries must be a list of queries (or left out for one query)")
    qs: list[QueryIn] = req.queries if req.queries is not None else [req]
    _limit(len(qs), cfg.max_queries, "queries", "--max-queries")
    k = req.k if req.k is not None else cfg.default_k
    if k > cfg.max_k:
        raise RequestError(
            f"k={k} is over this server's maximum of {cfg.max_k} (ask for fewer, or start "
            "the server with a larger --max-k)",
            status=422,
        )
    if k > model.n_items:
        raise RequestError(
            f"k={k} is larger than the catalogue: the model knows {model.n_items} items",
            status=422,
        )
    queries: list[Query] = []
    unknown: list[list[Any]] = []
    for i, q in enumerate(qs):
        where = f"queries[{i}]." if req.queries is not None else ""
        if q.baskets is not None:
            _check_baskets(q, model, cfg, where)
        elif model.task == "next-basket" and q.items:
            raise RequestError(
                f"{where}items: model {model.name!r} predicts next baskets; send the user's "
                "baskets as 'baskets' (a list of lists of item ids, oldest first)",
                status=422,
            )
        _limit(len(q.items), cfg.max_session_length, f"{where}items", "--max-session-length")
        _limit(len(q.exclude), cfg.max_exclude, f"{where}exclude", "--max-exclude")
        if q.candidates is not None:
            _limit(len(q.candidates), cfg.max_candidates, f"{where}candidates", "--max-candidates")
        items, known = _known_ids(model, q.items, f"{where}items")
        excl, ex_known = _known_ids(model, q.exclude, f"{where}exclude")
        cands = None
        bad = [q.items[j] for j in np.flatnonzero(~known).tolist()]
        bad += [q.exclude[j] for j in np.flatnonzero(~ex_known).tolist()]
        if q.candidates is not None:
            cand_arr, c_known = _known_ids(model, q.candidates, f"{where}candidates")
            cands = cand_arr[c_known]
            bad += [q.candidates[j] for j in np.flatnonzero(~c_known).tolist()]
        kw: dict[str, Any] = {}
        if q.baskets is not None:  # a next-basket model (checked above): known ids only
            flat = [i for b in q.baskets for i in b]
            arr, b_known = _known_ids(model, flat, f"{where}baskets")
            bad += [flat[j] for j in np.flatnonzero(~b_known).tolist()]
            ends = np.cumsum([len(b) for b in q.baskets])
            kw["baskets"] = [
                arr[a:e][b_known[a:e]]
                for a, e in zip(ends - [len(b) for b in q.baskets], ends, strict=True)
            ]
            if q.context is not None:
                if len(q.context) != len(q.baskets):
                    raise RequestError(
                        f"{where}context: one row per basket is needed ({len(q.baskets)} "
                        f"baskets, {len(q.context)} rows)",
                        status=422,
                    )
                kw["context"] = q.context
        elif q.context is not None:
            raise RequestError(
                f"{where}context goes with 'baskets' (next-basket models)", status=422
            )
        queries.append(
            Query(
                items=items[known],
                query_id=q.query_id,
                user_id=q.user_id,
                exclude=excl[ex_known],
                candidates=cands,
                **kw,
            )
        )
        unknown.append(list(dict.fromkeys(bad)) if bad else [])
    return queries, unknown, k


def _check_baskets(q: QueryIn, model: LoadedModel, cfg: ServeConfig, where: str) -> None:
    """Basket queries: refused by next-item models; limits on the number of baskets and
    items."""
    if model.task != "next-basket":
        raise RequestError(
            f"{where}baskets: model {model.name!r} is a next-item model; send the session "
            "as 'items' (oldest first) instead of 'baskets'",
            status=422,
        )
    _limit(len(q.baskets or ()), cfg.max_baskets, f"{where}baskets", "--max-baskets")
    n = sum(len(b) for b in q.baskets or ())
    _limit(n, cfg.max_session_length, f"{where}baskets (items in all)", "--max-session-length")


def result_payload(
    model: LoadedModel, recs: Sequence[Any], unknown: Sequence[list[Any]], titles: bool
) -> list[dict[str, Any]]:
    out = []
    for r, unk in zip(recs, unknown, strict=True):
        d: dict[str, Any] = {
            "query_id": r.query_id,
            "items": r.items.tolist(),
            "scores": r.scores.astype(np.float32, copy=False),
            "unknown_items": unk,
            "empty_history": r.empty_history,
        }
        if titles and model.titles is not None:
            d["titles"] = model.titles[model.rec.vocab_.lookup(r.items) - 1].tolist()
        out.append(d)
    return out


# ------------------------------------------------------------------------- the app
def _json(obj: Any, status: int = 200) -> Response:
    return Response(_dumps(obj), status_code=status, media_type="application/json")


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    body: dict[str, Any] = {"detail": message}
    if errors is not None:
        body["errors"] = errors
    return _json(body, status)


_UNION_TAGS = re.compile(r"^(constrained-int|int|str|strict-int|list\[.*\]|function-.*)$")


def _validation_errors(e: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message and the list of errors (union member tags dropped from the
    locations; the errors of one location merged)."""
    merged: dict[tuple[str, ...], list[str]] = {}
    for err in e.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(str(x) for x in err.get("loc", ()) if not _UNION_TAGS.match(str(x)))
        merged.setdefault(loc, []).append(str(err.get("msg")))
    errs = [{"loc": list(loc), "msg": _merge(m)} for loc, m in merged.items()]
    first = errs[0] if errs else {"loc": [], "msg": str(e)}
    where = ".".join(first["loc"]) or "body"
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"invalid request: {where}: {first['msg']}{more}; see /docs for the schema", errs


def _merge(msgs: list[str]) -> str:
    msgs = list(dict.fromkeys(msgs))
    head = "Input should be a valid "
    if len(msgs) > 1 and all(m.startswith(head) for m in msgs):
        return head + " or ".join(m[len(head) :] for m in msgs)
    return " or ".join(msgs)


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    too_big = RequestError(
        f"the request body is over this server's limit of {limit:,} bytes: send fewer or "
        "shorter queries (or start the server with a larger --max-body-bytes)",
        status=413,
    )
    if length is not None:
        if not length.isdigit():
            raise RequestError("invalid Content-Length header", status=400)
        if int(length) > limit:
            raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _check_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if ctype not in ("application/json", ""):
        raise RequestError(
            f"send the body as JSON (Content-Type: application/json), not {ctype}", status=415
        )


_ERRORS = {
    413: {"model": ErrorResponse, "description": "the body is over the size limit"},
    415: {"model": ErrorResponse, "description": "the body is not JSON"},
    422: {"model": ErrorResponse, "description": "the request is invalid or over a limit"},
}


def create_app(
    model_dir: str | Path,
    config: ServeConfig | None = None,
    *,
    reload_token: str | None = None,
) -> FastAPI:
    """The FastAPI app serving the saved model in ``model_dir``.

    The model is loaded (and its titles read) here, so a bad directory fails before a server
    starts; the micro-batcher starts with the app (its lifespan). ``reload_token`` is the
    secret ``POST /v1/admin/reload`` requires (``Authorization: Bearer <token>``); reload is
    on only with ``config.allow_reload`` and a non-empty token.
    """
    if fastapi is None:  # pragma: no cover - the serve extra is not installed
        raise ConfigError("seqrec serve needs FastAPI and uvicorn: pip install 'seqrec[serve]'")
    cfg = config or ServeConfig()
    if cfg.default_k > cfg.max_k:
        raise ConfigError(f"default k ({cfg.default_k}) is over --max-k ({cfg.max_k})")
    if cfg.allow_reload and not reload_token:
        raise ConfigError(
            "reload is on but no token is set: export the token in the environment variable "
            "(SEQREC_RELOAD_TOKEN by default) or leave --allow-reload off"
        )
    model_dir = Path(model_dir)
    reload_root = Path(cfg.reload_root).resolve() if cfg.reload_root else None
    if reload_root is not None and not reload_root.is_dir():
        raise ConfigError(f"--reload-root {reload_root} is not a directory")
    titles = read_titles(cfg.titles) if cfg.titles else None
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    state: dict[str, Any] = {
        "model": load_model(model_dir, device=cfg.device, titles=titles),
        "ready": False,
    }
    batcher = MicroBatcher(cfg.batch_window_ms / 1000.0, cfg.max_batch_size)
    reload_lock = asyncio.Lock()
    demo_html = (_STATIC / "demo.html").read_bytes()
    demo_js = (_STATIC / "demo.js").read_bytes()
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start(cfg.threads)
        gc.collect()
        gc.freeze()  # the model's objects leave the collector's generations: shorter pauses
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()

    app = FastAPI(
        title="seqrec",
        version=str(state["model"].info["seqrec_version"] or ""),
        description="Sequential recommendation over a saved seqrec model.",
        lifespan=lifespan,
    )
    app.state.seqrec = state
    app.state.batcher = batcher

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> Response:
        return _error(exc.status, str(exc))

    @app.exception_handler(SeqrecError)
    async def _seqrec_error(request: Request, exc: SeqrecError) -> Response:
        return _error(422, str(exc))

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def _validation(request: Request, exc: Any) -> Response:
        errs = [
            {"loc": [str(x) for x in err.get("loc", ())], "msg": str(err.get("msg"))}
            for err in exc.errors()
        ]
        loc = ".".join(errs[0]["loc"]) if errs else "request"
        msg = errs[0]["msg"] if errs else "invalid"
        return _error(422, f"invalid request: {loc}: {msg}", errs)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/demo")

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: the model is loaded and warmed",
        responses={503: {"model": ErrorResponse}},
    )
    async def readyz() -> Response:
        if not state["ready"]:
            return _error(503, "not ready: the model is loading")
        return _json({"status": "ready", "model_version": state["model"].version})

    @app.get("/v1/model", summary="The served model: name, config, vocabulary, metrics, versions")
    async def model_info() -> Response:
        m: LoadedModel = state["model"]
        from seqrec import __version__

        limits = cfg.model_dump(
            include={
                "default_k",
                "max_k",
                "max_queries",
                "max_session_length",
                "max_exclude",
                "max_candidates",
                "max_baskets",
                "max_body_bytes",
                "batch_window_ms",
                "max_batch_size",
                "threads",
            }
        )
        return _json(
            {
                **m.info,
                "server_seqrec_version": __version__,
                "uptime_s": round(time.time() - started, 1),
                "limits": limits,
                "batches": batcher.n_batches,
                "queries": batcher.n_queries,
            }
        )

    @app.post(
        "/v1/recommend",
        summary="Top-k next items for one query or a list of queries",
        response_model=RecommendResponse,
        responses=_ERRORS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/RecommendRequest"}
                    }
                },
            }
        },
    )
    async def recommend(request: Request) -> Response:
        # the body is validated by pydantic's JSON parser directly (no json.loads and no
        # FastAPI body machinery: ~2x faster); the schema above documents it
        _check_json(request)
        body = await _read_body(request, cfg.max_body_bytes)
        try:
            req = RecommendRequest.model_validate_json(body)
        except ValidationError as e:
            msg, errs = _validation_errors(e)
            return _error(422, msg, errs)
        model: LoadedModel = state["model"]
        queries, unknown, k = build_queries(req, model, cfg)
        recs = await batcher.submit(model, queries, unknown, k, req.exclude_seen)
        return _json(
            {
                "model": model.name,
                "model_version": model.version,
                "results": result_payload(model, recs, unknown, req.titles),
            }
        )

    @app.get(
        "/v1/items",
        summary="Search the catalogue by title (ids where there are no titles)",
        response_model=ItemsResponse,
        responses=_ERRORS,
    )
    async def items(
        q: Annotated[str, fastapi.Query(max_length=200)] = "",
        limit: int = fastapi.Query(20, ge=1, le=cfg.max_search_results),  # noqa: B008
    ) -> Response:
        m: LoadedModel = state["model"]
        needle = q.strip().lower()
        if needle:
            pos = np.char.find(m.search_keys, needle)
            hits = np.flatnonzero(pos >= 0)
            # prefix matches first, then by popularity (the vocabulary is in that order)
            hits = hits[np.argsort(pos[hits] != 0, kind="stable")][:limit]
        else:
            hits = np.arange(min(limit, m.n_items))
        ids = m.rec.vocab_.ids[hits].tolist()
        titles = m.titles[hits].tolist() if m.titles is not None else [None] * len(ids)
        return _json(
            {
                "items": [{"item_id": i, "title": t} for i, t in zip(ids, titles, strict=True)],
                "has_titles": m.titles is not None,
            }
        )

    @app.post(
        "/v1/admin/reload",
        summary="Swap in the model directory again (or one under --reload-root); off by default",
        responses={
            401: {"model": ErrorResponse},
            403: {"model": ErrorResponse},
            409: {"model": ErrorResponse},
            **_ERRORS,
        },
    )
    async def reload(request: Request) -> Response:
        if not cfg.allow_reload or not reload_token:
            raise RequestError(
                "reload is off: start seqrec serve with --allow-reload and a token in "
                "$SEQREC_RELOAD_TOKEN",
                status=403,
            )
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), reload_token.encode()):
            raise RequestError(
                "missing or wrong token: send 'Authorization: Bearer <token>'", status=401
            )
        if cfg.workers > 1:
            raise RequestError(
                f"this server runs {cfg.workers} workers and a reload would reach one of "
                "them: send SIGHUP to the seqrec serve process instead (its workers are "
                "replaced one by one, each loading the served directory)",
                status=409,
            )
        _check_json(request)
        body = await _read_body(request, 4096)
        try:
            rr = ReloadRequest.model_validate_json(body or b"{}")
        except ValidationError as e:
            msg, errs = _validation_errors(e)
            return _error(422, msg, errs)
        target = _reload_target(rr.name, model_dir, reload_root)
        async with reload_lock:
            old: LoadedModel = state["model"]
            loop = asyncio.get_running_loop()
            try:
                new = await loop.run_in_executor(
                    None, lambda: load_model(target, device=cfg.device, titles=titles)
                )
            except SeqrecError as e:
                raise RequestError(
                    f"the model at {target} could not be loaded ({e}); still serving {old.version}",
                    status=422,
                ) from e
            state["model"] = new  # atomic: queued requests keep the model they came with
        logger.info("reloaded %s: %s -> %s", target, old.version, new.version)
        return _json({"status": "reloaded", "previous_version": old.version, **new.info})

    @app.get("/demo", include_in_schema=False)
    async def demo() -> Response:
        return Response(
            demo_html,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"
            },
        )

    @app.get("/demo/demo.js", include_in_schema=False)
    async def demo_script() -> Response:
        return Response(demo_js, media_type="text/javascript; charset=utf-8")

    def openapi() -> dict[str, Any]:  # the recommend body is parsed by hand: add its schema
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            comps = schema.setdefault("components", {}).setdefault("schemas", {})
            req = RecommendRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            comps.update(req.pop("$defs", {}))
            comps["RecommendRequest"] = req
            m0: LoadedModel = state["model"]
            _document_limits(comps, cfg, m0.n_items, m0.int_ids, m0.task == "next-basket")
            comps.update(_one_or_many(comps.pop("RecommendRequest")))
            rl = ReloadRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            comps["ReloadRequest"] = rl
            op = schema["paths"]["/v1/admin/reload"]["post"]
            op["requestBody"] = {
                "required": False,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ReloadRequest"}}
                },
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _document_limits(
    comps: dict[str, Any], cfg: ServeConfig, n_items: int, int_ids: bool, baskets: bool
) -> None:
    """Write the server's limits into the request schemas (maxItems, maximum), so the
    OpenAPI spec says what this server accepts."""

    def cap(prop: dict[str, Any], n: int, ids: bool = True) -> None:
        for sub in [prop, *prop.get("anyOf", [])]:
            if sub.get("type") == "array":
                sub["maxItems"] = n
                inner = sub.get("items", {})
                if ids and int_ids and "anyOf" in inner:  # this model's ids are integers
                    sub["items"] = next(a for a in inner["anyOf"] if a.get("type") == "integer")
                elif inner.get("type") == "array":
                    cap(inner, cfg.max_session_length)

    for name in ("RecommendRequest", "QueryIn"):
        props = comps[name]["properties"]
        cap(props["items"], cfg.max_session_length)
        cap(props["exclude"], cfg.max_exclude)
        cap(props["candidates"], cfg.max_candidates)
        cap(props["baskets"], cfg.max_baskets, ids=False)
        cap(props["context"], cfg.max_baskets, ids=False)
        if not baskets:  # a next-item model takes no baskets (nor their context)
            props["baskets"] = {"type": "null", "description": "not taken by next-item models"}
            props["context"] = {"type": "null", "description": "not taken by next-item models"}
    props = comps["RecommendRequest"]["properties"]
    cap(props["queries"], cfg.max_queries)
    for sub in props["k"].get("anyOf", [props["k"]]):
        if sub.get("type") == "integer":
            sub["maximum"] = min(cfg.max_k, n_items)


_OPTIONS = ("k", "exclude_seen", "titles")


def _one_or_many(req: dict[str, Any]) -> dict[str, Any]:
    """The request schema as what it is: one query at the top level, or ``queries`` with
    the options (both closed objects)."""
    props = req["properties"]
    queries = next(a for a in props["queries"]["anyOf"] if a.get("type") == "array")
    one = {
        "type": "object",
        "title": "One query",
        "properties": {k: v for k, v in props.items() if k != "queries"},
        "additionalProperties": False,
    }
    many = {
        "type": "object",
        "title": "A list of queries",
        "properties": {"queries": queries, **{k: props[k] for k in _OPTIONS}},
        "required": ["queries"],
        "additionalProperties": False,
    }
    return {
        "RecommendOne": one,
        "RecommendMany": many,
        "RecommendRequest": {
            "title": "RecommendRequest",
            "description": req.get("description", ""),
            "oneOf": [
                {"$ref": "#/components/schemas/RecommendOne"},
                {"$ref": "#/components/schemas/RecommendMany"},
            ],
        },
    }


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _reload_target(name: str | None, model_dir: Path, root: Path | None) -> Path:
    """The directory a reload loads: the served one, or ``root/name`` (one plain path
    component, resolved inside ``root``) — never a path taken from the request as is."""
    if name is None:
        return model_dir
    if root is None:
        raise RequestError(
            "this server reloads only the directory it serves: send no 'name' (or start it "
            "with --reload-root DIR to choose among the directories in DIR)",
            status=422,
        )
    if not _NAME.fullmatch(name) or ".." in name:
        raise RequestError(
            f"name {name!r} must be one directory name under the reload root (letters, digits, "
            "'.', '_', '-'; no '/' and no '..')",
            status=422,
        )
    target = (root / name).resolve()
    if target.parent != root or not target.is_dir():
        raise RequestError(f"no model directory {name!r} under the reload root", status=422)
    return target


__all__ = [
    "LoadedModel",
    "MicroBatcher",
    "QueryIn",
    "RecommendRequest",
    "RecommendResponse",
    "ServeConfig",
    "create_app",
    "load_model",
    "read_titles",
]
