"""Queries: what a model is asked — "given these items so far, what next?".

A :class:`Query` is one request in external ids (what an HTTP request or a row of a batch
file becomes). A :class:`QueryBatch` is many of them in dense indices on a device, ragged:
query ``i``'s history is ``items[starts[i]:ends[i]]`` (oldest first). The starts/ends
layout lets evaluation build every prefix of a held-out sequence as a *view* of the
sequence's flat item array (no copy of the prefixes); a batch built from lists has
``starts = offsets[:-1]``, ``ends = offsets[1:]``.

Every model scores a batch through ``Scorer.score(batch) -> (B, n_items)``; masking
(padding, items to exclude, candidate sets) is applied by the caller with
:meth:`QueryBatch.mask`, so no model repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqrec.data.sequences import SequenceData
from seqrec.exceptions import DataError


@dataclass(frozen=True)
class Query:
    """One request in external ids.

    Attributes
    ----------
    items
        The session's (or user's) items so far, oldest first. May be empty.
    query_id
        Echoed back in results (e.g. the session id of a batch file).
    user_id
        Optional: the user, for models that use a user's earlier history.
    exclude
        Items never to recommend (e.g. already bought).
    candidates
        Only these items may be recommended (None: every item).
    """

    items: Sequence[Any] = ()
    query_id: Any = None
    user_id: Any = None
    exclude: Sequence[Any] = ()
    candidates: Sequence[Any] | None = None
    baskets: Sequence[Sequence[Any]] | None = None
    """Next-basket models: the user's baskets so far (oldest first), each a list of items;
    ``items`` is then ignored."""
    context: Sequence[Sequence[float]] | None = None
    """Next-basket models with order context: one row per basket of ``baskets``."""


def _ragged(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flat array and offsets of a list of 1-D int arrays."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(seqs).astype(np.int64) if len(seqs) else np.zeros(0, np.int64)
    return (flat if len(flat) else np.zeros(0, np.int64)), offsets


@dataclass(frozen=True, eq=False)
class QueryBatch:
    """``B`` queries in dense item indices, ragged (see the module docstring).

    Attributes
    ----------
    items : int64 (n,)
        Flat item indices (1..n_items-1; 0 never appears).
    starts, ends : int64 (B,)
        Query ``i``'s history is ``items[starts[i]:ends[i]]``.
    n_items
        Size of the item table (vocabulary + padding).
    user_ids
        External user ids (B,) or None.
    exclude_items, exclude_offsets
        Ragged items to mask per query (or None).
    candidate_items, candidate_offsets
        Ragged allowed items per query (or None: all items allowed).
    exclude_seen
        Also mask each query's own history items.
    times
        Time of each query (unix seconds, (B,)) or None.
    basket_offsets, basket_starts, basket_ends
        Basket queries (next-basket models): basket ``b`` is
        ``items[basket_offsets[b]:basket_offsets[b+1]]`` and query ``i``'s history is baskets
        ``basket_starts[i]..basket_ends[i]-1`` (so ``starts[i] = basket_offsets[basket_starts[i]]``).
    basket_context
        ``(n_baskets, C)`` float context of every basket (day of week, hour, days since the
        prior order) or None.
    """

    items: Tensor
    starts: Tensor
    ends: Tensor
    n_items: int
    user_ids: np.ndarray | None = None
    exclude_items: Tensor | None = None
    exclude_offsets: Tensor | None = None
    candidate_items: Tensor | None = None
    candidate_offsets: Tensor | None = None
    exclude_seen: bool = False
    times: Tensor | None = None
    basket_offsets: Tensor | None = None
    basket_starts: Tensor | None = None
    basket_ends: Tensor | None = None
    basket_context: Tensor | None = None
    _np: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ builders
    @classmethod
    def from_lists(
        cls,
        histories: Sequence[Sequence[int] | np.ndarray],
        n_items: int,
        *,
        device: torch.device | str = "cpu",
        exclude: Sequence[Sequence[int] | np.ndarray] | None = None,
        candidates: Sequence[Sequence[int] | np.ndarray | None] | None = None,
        user_ids: np.ndarray | None = None,
        exclude_seen: bool = False,
    ) -> QueryBatch:
        """From per-query lists of dense indices (0 entries are dropped)."""
        seqs = [np.asarray(h, dtype=np.int64) for h in histories]
        seqs = [s[s > 0] for s in seqs]
        flat, off = _ragged(seqs)
        _check_range(flat, n_items)
        kw: dict[str, Any] = {}
        if exclude is not None:
            ex, ex_off = _ragged([np.asarray(e, dtype=np.int64) for e in exclude])
            _check_range(ex[ex > 0], n_items)
            kw["exclude_items"] = torch.from_numpy(ex).to(device)
            kw["exclude_offsets"] = torch.from_numpy(ex_off).to(device)
        if candidates is not None and any(c is not None for c in candidates):
            # a query without a candidate set allows every item: spell it out as all items
            full = np.arange(1, n_items, dtype=np.int64)
            cs = [full if c is None else np.asarray(c, dtype=np.int64) for c in candidates]
            ca, ca_off = _ragged(cs)
            _check_range(ca[ca > 0], n_items)
            kw["candidate_items"] = torch.from_numpy(ca).to(device)
            kw["candidate_offsets"] = torch.from_numpy(ca_off).to(device)
        return cls(
            items=torch.from_numpy(flat).to(device),
            starts=torch.from_numpy(off[:-1].copy()).to(device),
            ends=torch.from_numpy(off[1:].copy()).to(device),
            n_items=n_items,
            user_ids=user_ids,
            exclude_seen=exclude_seen,
            **kw,
        )

    @classmethod
    def from_baskets(
        cls,
        histories: Sequence[Sequence[Sequence[int] | np.ndarray]],
        n_items: int,
        *,
        device: torch.device | str = "cpu",
        exclude: Sequence[Sequence[int] | np.ndarray] | None = None,
        candidates: Sequence[Sequence[int] | np.ndarray | None] | None = None,
        user_ids: np.ndarray | None = None,
        exclude_seen: bool = False,
        context: Sequence[np.ndarray | None] | None = None,
    ) -> QueryBatch:
        """Basket queries from per-query lists of baskets of dense indices (0 entries and
        repeats inside a basket are dropped; baskets left empty are dropped). ``context``:
        per query an ``(n_baskets, C)`` array (or None for all queries)."""
        per_query: list[list[np.ndarray]] = []
        ctx_rows: list[np.ndarray] = []
        for q, h in enumerate(histories):
            kept = []
            for j, b in enumerate(h):
                a = np.asarray(b, dtype=np.int64)
                a = a[a > 0]
                _, first = np.unique(a, return_index=True)
                a = a[np.sort(first)]
                if len(a):
                    kept.append(a)
                    if context is not None:
                        c = context[q]
                        if c is None or len(c) != len(h):
                            raise DataError(
                                f"query {q}: context needs one row per basket ({len(h)}), "
                                f"got {0 if c is None else len(c)}"
                            )
                        ctx_rows.append(np.asarray(c[j], dtype=np.float32))
            per_query.append(kept)
        baskets = [b for q in per_query for b in q]
        batch = cls.from_lists(
            [np.concatenate(q) if q else np.zeros(0, np.int64) for q in per_query],
            n_items,
            device=device,
            exclude=exclude,
            candidates=candidates,
            user_ids=user_ids,
            exclude_seen=exclude_seen,
        )
        _, bo = _ragged(baskets)
        n_b = np.fromiter((len(q) for q in per_query), dtype=np.int64, count=len(per_query))
        qb = np.zeros(len(per_query) + 1, dtype=np.int64)
        np.cumsum(n_b, out=qb[1:])
        ctx = None
        if context is not None:
            shapes = [np.shape(c) for c in context if c is not None and np.ndim(c) == 2]
            width = len(ctx_rows[0]) if ctx_rows else (shapes[0][1] if shapes else 0)
            arr = np.stack(ctx_rows) if ctx_rows else np.zeros((0, width), np.float32)
            ctx = torch.from_numpy(arr).to(device)
        return replace(
            batch,
            basket_offsets=torch.from_numpy(bo).to(device),
            basket_starts=torch.from_numpy(qb[:-1].copy()).to(device),
            basket_ends=torch.from_numpy(qb[1:].copy()).to(device),
            basket_context=ctx,
            _np={},
        )

    @classmethod
    def basket_prefixes(
        cls,
        data: SequenceData,
        targets: np.ndarray,
        *,
        device: torch.device | str = "cpu",
        exclude_seen: bool = False,
        items: Tensor | None = None,
        basket_offsets: Tensor | None = None,
        basket_context: Tensor | None = None,
    ) -> QueryBatch:
        """The queries of target baskets: query ``j``'s history is every basket of its
        sequence before basket ``targets[j]``. Vectorised views of ``data`` (pass the shared
        ``items``/``basket_offsets``/``basket_context`` tensors to reuse them across batches)."""
        targets = np.asarray(targets, dtype=np.int64)
        bo = data._require_baskets()
        sb = data.sequence_baskets()
        seq = np.searchsorted(sb, targets, side="right") - 1
        if items is None:
            items = torch.from_numpy(data.items.astype(np.int64)).to(device)
        if basket_offsets is None:
            basket_offsets = torch.from_numpy(bo).to(device)
        if basket_context is None and data.basket_context is not None:
            basket_context = torch.from_numpy(data.basket_context).to(device)
        users = _users_of(data, seq)
        times = None
        if data.timestamps is not None:
            times = torch.from_numpy(data.timestamps[bo[targets]]).to(device)
        return cls(
            items=items,
            starts=torch.from_numpy(bo[sb[seq]]).to(device),
            ends=torch.from_numpy(bo[targets]).to(device),
            n_items=data.n_items,
            user_ids=users,
            exclude_seen=exclude_seen,
            times=times,
            basket_offsets=basket_offsets,
            basket_starts=torch.from_numpy(sb[seq]).to(device),
            basket_ends=torch.from_numpy(targets.copy()).to(device),
            basket_context=basket_context,
        )

    @classmethod
    def prefixes(
        cls,
        data: SequenceData,
        positions: np.ndarray,
        *,
        device: torch.device | str = "cpu",
        exclude_seen: bool = False,
        items: Tensor | None = None,
    ) -> QueryBatch:
        """The prefix queries of target events: query ``j`` is the history before event
        ``positions[j]`` (an index into ``data.items``) within its sequence. Vectorised;
        the prefixes are views of one int64 copy of ``data.items`` on ``device`` — pass it
        as ``items`` to share it between the batches of one pass over ``data``."""
        positions = np.asarray(positions, dtype=np.int64)
        if items is None:
            items = torch.from_numpy(data.items.astype(np.int64)).to(device)
        seq = np.searchsorted(data.offsets, positions, side="right") - 1
        starts = data.offsets[seq]
        times = None
        if data.timestamps is not None:
            times = torch.from_numpy(data.timestamps[positions]).to(device)
        users = _users_of(data, seq)
        return cls(
            items=items,
            starts=torch.from_numpy(starts).to(device),
            ends=torch.from_numpy(positions).to(device),
            n_items=data.n_items,
            user_ids=users,
            exclude_seen=exclude_seen,
            times=times,
        )

    # ------------------------------------------------------------ accessors
    def __len__(self) -> int:
        return len(self.starts)

    @property
    def device(self) -> torch.device:
        return self.starts.device

    @property
    def lengths(self) -> Tensor:
        """(B,) history length of each query."""
        return self.ends - self.starts

    def numpy(self, name: str) -> np.ndarray:
        """A CPU NumPy copy of a tensor field (cached), for NumPy/SciPy models."""
        if name not in self._np:
            self._np[name] = getattr(self, name).cpu().numpy()
        return self._np[name]

    def last(self, n: int, *, pad: int = 0) -> tuple[Tensor, Tensor]:
        """The last ``n`` items of every query, left-padded: ``(B, n)`` items, ``(B, n)``
        bool valid mask. Row ``i`` ends with query ``i``'s most recent item."""
        if n < 1:
            raise DataError(f"n must be >= 1, got {n}")
        idx = self.ends.unsqueeze(1) - n + torch.arange(n, device=self.device)  # (B, n)
        valid = idx >= self.starts.unsqueeze(1)
        if len(self.items) == 0:
            return torch.full(idx.shape, pad, dtype=torch.long, device=self.device), valid
        items = self.items[idx.clamp_(min=0).clamp_(max=len(self.items) - 1)]
        return items.masked_fill(~valid, pad), valid

    def flat(self) -> tuple[Tensor, Tensor]:
        """Every history item with its query row: ``(rows (n,), items (n,))``, ragged order."""
        lengths = self.lengths
        rows = torch.repeat_interleave(torch.arange(len(self), device=self.device), lengths)
        first = torch.repeat_interleave(self.starts, lengths)
        within = torch.arange(len(rows), device=self.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        return rows, self.items[first + within]

    # -------------------------------------------------------------- baskets
    @property
    def is_baskets(self) -> bool:
        """Whether the queries are basket histories (next-basket models)."""
        return self.basket_offsets is not None

    def _baskets(self) -> tuple[Tensor, Tensor, Tensor]:
        if self.basket_offsets is None or self.basket_starts is None or self.basket_ends is None:
            raise DataError(
                "this model predicts next baskets: give each query a list of baskets "
                "(Query(baskets=[[...], ...]) or QueryBatch.from_baskets)"
            )
        return self.basket_offsets, self.basket_starts, self.basket_ends

    @property
    def n_baskets(self) -> Tensor:
        """(B,) number of history baskets of each query."""
        _, bs, be = self._baskets()
        return be - bs

    def baskets_last(
        self, n: int, *, max_size: int | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """The last ``n`` baskets of every query, padded.

        Returns ``items (B, n, S)`` (0 = padding), ``item_valid (B, n, S)`` bool,
        ``basket_valid (B, n)`` bool and ``context (B, n, C)`` (zeros where padded; None
        without context). Baskets are right-aligned (row ``[:, -1]`` is the most recent);
        items keep their order within a basket; ``S`` is the largest basket in the batch,
        or ``max_size`` (a larger basket keeps its first ``max_size`` items)."""
        if n < 1:
            raise DataError(f"n must be >= 1, got {n}")
        bo, bs, be = self._baskets()
        dev = self.device
        bidx = be.unsqueeze(1) - n + torch.arange(n, device=dev)  # (B, n)
        basket_valid = bidx >= bs.unsqueeze(1)
        bidx = bidx.clamp(min=0)
        begin = bo[bidx]  # (B, n)
        size = torch.where(basket_valid, bo[(bidx + 1).clamp(max=len(bo) - 1)] - begin, 0)
        s_max = int(size.max()) if size.numel() else 0
        if max_size is not None:
            s_max = min(s_max, max_size)
        s_max = max(s_max, 1)
        ar = torch.arange(s_max, device=dev)
        item_valid = ar < size.unsqueeze(-1)  # (B, n, S)
        if len(self.items):
            idx = (begin.unsqueeze(-1) + ar).clamp(max=len(self.items) - 1)
            items = self.items[idx].masked_fill(~item_valid, 0)
        else:
            items = torch.zeros(item_valid.shape, dtype=torch.long, device=dev)
        ctx = None
        if self.basket_context is not None:
            c = self.basket_context
            if len(c):
                ctx = c[bidx.clamp(max=len(c) - 1)] * basket_valid.unsqueeze(-1)
            else:
                ctx = torch.zeros(*bidx.shape, c.shape[1], device=dev)
        return items, item_valid, basket_valid, ctx

    def basket_flat(self) -> tuple[Tensor, Tensor, Tensor]:
        """Every history item with its query row and its basket's position in the query's
        history (0 = oldest): ``(rows (n,), basket_pos (n,), items (n,))``, ragged order."""
        bo, bs, _ = self._baskets()
        rows, items = self.flat()
        lengths = self.lengths
        first = torch.repeat_interleave(self.starts, lengths)
        within = torch.arange(len(rows), device=self.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        pos = first + within  # index into self.items
        basket = torch.searchsorted(bo, pos, right=True) - 1
        return rows, basket - bs[rows], items

    def histories(self) -> list[np.ndarray]:
        """Per-query NumPy arrays of history items (for tests and small batches)."""
        items, s, e = self.numpy("items"), self.numpy("starts"), self.numpy("ends")
        return [items[a:b] for a, b in zip(s.tolist(), e.tolist(), strict=True)]

    def select(self, rows: slice) -> QueryBatch:
        """A contiguous sub-batch (evaluation chunks); ragged extras are re-based."""
        kw: dict[str, Any] = {"_np": {}}
        for name in ("exclude", "candidate"):
            it, off = getattr(self, f"{name}_items"), getattr(self, f"{name}_offsets")
            if it is None:
                continue
            a, b = int(off[rows.start or 0]), int(off[min(rows.stop, len(self))])
            kw[f"{name}_items"] = it[a:b]
            kw[f"{name}_offsets"] = off[rows.start : (rows.stop or len(self)) + 1] - a
        return replace(
            self,
            starts=self.starts[rows],
            ends=self.ends[rows],
            user_ids=None if self.user_ids is None else self.user_ids[rows],
            times=None if self.times is None else self.times[rows],
            basket_starts=None if self.basket_starts is None else self.basket_starts[rows],
            basket_ends=None if self.basket_ends is None else self.basket_ends[rows],
            **kw,
        )

    def exclusion_mask(self, n_cols: int | None = None) -> Tensor:
        """(B, n_items) bool, True where an item may not be recommended: padding, the
        query's history (``exclude_seen``), its ``exclude`` items, items outside its
        candidate set."""
        n_cols = self.n_items if n_cols is None else n_cols
        masked = torch.zeros(len(self), n_cols, dtype=torch.bool, device=self.device)
        masked[:, 0] = True
        if self.exclude_seen and len(self.items):
            rows, items = self.flat()
            masked[rows, items] = True
        if self.exclude_items is not None and len(self.exclude_items):
            rows = _rows_of(self.exclude_offsets, self.device)
            masked[rows, self.exclude_items] = True
        if self.candidate_items is not None:
            allowed = torch.zeros_like(masked)
            rows = _rows_of(self.candidate_offsets, self.device)
            allowed[rows, self.candidate_items] = True
            masked |= ~allowed
        return masked

    @property
    def has_exclusions(self) -> bool:
        """Whether anything beyond the padding column is masked."""
        return bool(
            self.exclude_seen or self.exclude_items is not None or self.candidate_items is not None
        )

    def mask(self, scores: Tensor) -> Tensor:
        """Apply :meth:`exclusion_mask` to ``scores`` (B, n_items) in place: masked entries
        become ``-inf``. Returns ``scores``."""
        if not self.has_exclusions:
            scores[:, 0] = float("-inf")
            return scores
        return scores.masked_fill_(self.exclusion_mask(scores.shape[1]), float("-inf"))


def _users_of(data: SequenceData, seq: np.ndarray) -> np.ndarray | None:
    """The user of each sequence ``seq`` (its session id when the data has no users)."""
    if data.user_ids is not None:
        return data.user_ids[seq]
    return None if data.session_ids is None else data.session_ids[seq]


def _rows_of(offsets: Tensor, device: torch.device) -> Tensor:
    return torch.repeat_interleave(torch.arange(len(offsets) - 1, device=device), offsets.diff())


def _check_range(flat: np.ndarray, n_items: int) -> None:
    if len(flat) and (flat.min() < 0 or flat.max() >= n_items):
        raise DataError(
            f"query item indices must be in 1..{n_items - 1}, got {int(flat.min())}..{int(flat.max())}"
        )
