"""Synthetic session logs with a planted, known answer.

Used by tests, the model contract suite and the embedded demo: a model that learns the
planted structure must approach :func:`synthetic_optimal_recall`.

The generative process of :func:`synthetic_sessions`
-----------------------------------------------------
* A random successor map ``succ`` is drawn first from the seed: a random cyclic order of all
  items, each item's successor being the next one on the cycle. It is a permutation with a
  single cycle, so no item is its own successor and following it never gets stuck in a short
  loop. :func:`synthetic_successors` returns it for a given seed.
* A session has ``2 + G`` events with ``G ~ Geometric(1 / (mean_length - 1)) - 1`` (support
  ``0, 1, ...``), so the mean length is ``mean_length`` and the tail is long, as in real logs.
* The first item is uniform over all items. Each later item is ``succ[previous]`` with
  probability ``p_follow``, and otherwise uniform over all items (which may again be
  ``succ[previous]``, or the previous item itself).
* Session start times are uniform over ``span_days`` days from ``start_time`` (session ids are
  numbered in start order); gaps between events are ``1 + Exponential(mean 120 s)`` seconds,
  so timestamps strictly increase within a session and a time-based split works.

Generation is fully vectorised: since ``succ`` moves one step along the cycle, the item at
event ``t`` is the cycle position of the last uniform draw ``s <= t`` plus ``t - s``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from seqrec.columns import Columns
from seqrec.exceptions import ConfigError

ITEM_ID_OFFSET = 1000
"""External item id of the synthetic item ``j`` (``0 <= j < n_items``) is ``ITEM_ID_OFFSET + j``,
so external ids never coincide with dense vocabulary indices."""

_MEAN_GAP_S = 120.0
_MIN_GAP_S = 1.0


def _check(n_sessions: int, n_items: int, mean_length: float, p_follow: float) -> None:
    if n_sessions < 0:
        raise ConfigError(f"n_sessions must be >= 0, got {n_sessions}")
    if n_items < 2:
        raise ConfigError(f"n_items must be >= 2, got {n_items}")
    if not mean_length >= 2.0:
        raise ConfigError(
            f"mean_length must be >= 2 (sessions have at least 2 events), got {mean_length}"
        )
    if not 0.0 <= p_follow <= 1.0:
        raise ConfigError(f"p_follow must be in [0, 1], got {p_follow}")


def _cycle(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Random cyclic order of ``0..n_items-1``; ``succ[order[j]] = order[(j + 1) % n]``."""
    return rng.permutation(n_items)


def synthetic_successors(n_items: int = 200, *, seed: int = 0) -> np.ndarray:
    """The planted successor map of :func:`synthetic_sessions` for the same ``n_items`` and seed.

    Depends only on ``n_items`` and ``seed`` (not on ``n_sessions`` or the other arguments).

    Returns
    -------
    np.ndarray
        int64 ``(n_items,)``: entry ``j`` is the external id of the successor of item
        ``ITEM_ID_OFFSET + j``.

    Examples
    --------
    >>> succ = synthetic_successors(5, seed=0)
    >>> sorted(succ.tolist()) == list(range(ITEM_ID_OFFSET, ITEM_ID_OFFSET + 5))
    True
    >>> bool(np.all(succ != ITEM_ID_OFFSET + np.arange(5)))
    True
    """
    if n_items < 2:
        raise ConfigError(f"n_items must be >= 2, got {n_items}")
    order = _cycle(np.random.default_rng(seed), n_items)
    succ = np.empty(n_items, dtype=np.int64)
    succ[order] = np.roll(order, -1)
    return succ + ITEM_ID_OFFSET


def synthetic_sessions(
    n_sessions: int = 2000,
    n_items: int = 200,
    *,
    mean_length: float = 8.0,
    p_follow: float = 0.9,
    seed: int | None = 0,
    start_time: float = 1.6e9,
    span_days: float = 60.0,
) -> pl.DataFrame:
    """A session log whose next item follows a planted successor map with probability ``p_follow``.

    See the module docstring for the exact process. The planted map is
    ``synthetic_successors(n_items, seed=seed)``; the best achievable next-item Recall@k is
    ``synthetic_optimal_recall(n_items, p_follow, k)``.

    Parameters
    ----------
    n_sessions
        Number of sessions.
    n_items
        Number of distinct items (not a vocabulary size: add 1 for padding to get
        ``SequenceData.n_items``).
    mean_length
        Mean session length (>= 2; every session has at least 2 events).
    p_follow
        Probability that an event (other than the first) is the planted successor of the
        previous one rather than a uniform draw.
    seed
        Seed of ``numpy.random.default_rng``; ``None`` draws fresh entropy.
    start_time
        Unix time (seconds) of the earliest possible session start.
    span_days
        Session starts are spread uniformly over this many days.

    Returns
    -------
    polars.DataFrame
        Columns ``session_id`` (int64, ``0..n_sessions-1`` in start order), ``item_id``
        (int64, ``ITEM_ID_OFFSET + j``) and ``timestamp`` (float64 unix seconds, strictly
        increasing within a session), sorted by session then time.

    Examples
    --------
    >>> df = synthetic_sessions(3, 10, seed=1)
    >>> df.columns
    ['session_id', 'item_id', 'timestamp']
    >>> df.group_by("session_id").len()["len"].min() >= 2
    True
    """
    _check(n_sessions, n_items, mean_length, p_follow)
    if not span_days > 0:
        raise ConfigError(f"span_days must be > 0, got {span_days}")
    rng = np.random.default_rng(seed)
    order = _cycle(rng, n_items)  # drawn first: synthetic_successors reproduces it
    pos = np.empty(n_items, dtype=np.int64)
    pos[order] = np.arange(n_items)  # position of each item on the cycle

    lengths = 1 + rng.geometric(1.0 / (mean_length - 1.0), size=n_sessions).astype(np.int64)
    offsets = np.zeros(n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n_events = int(offsets[-1])
    starts = offsets[:-1]
    session_of = np.repeat(np.arange(n_sessions, dtype=np.int64), lengths)  # (E,)
    event = np.arange(n_events, dtype=np.int64)

    # items: a uniform draw at each "reset" (session start or no-follow), then walk the cycle
    follow = rng.random(n_events) < p_follow  # (E,)
    follow[starts] = False
    draws = rng.integers(0, n_items, size=n_events)  # (E,)
    last_reset = np.maximum.accumulate(np.where(follow, 0, event))  # (E,)
    items = order[(pos[draws[last_reset]] + (event - last_reset)) % n_items]

    # timestamps: uniform session starts, positive gaps, cumulated within each session
    session_start = start_time + np.sort(rng.uniform(0.0, span_days * 86400.0, size=n_sessions))
    gaps = _MIN_GAP_S + rng.exponential(_MEAN_GAP_S, size=n_events)
    gaps[starts] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= elapsed[starts][session_of]
    timestamps = session_start[session_of] + elapsed

    return pl.DataFrame(
        {
            Columns.session: pl.Series(session_of, dtype=pl.Int64),
            Columns.item: pl.Series(items.astype(np.int64) + ITEM_ID_OFFSET, dtype=pl.Int64),
            Columns.time: pl.Series(timestamps, dtype=pl.Float64),
        }
    )


def synthetic_optimal_recall(n_items: int, p_follow: float, k: int) -> float:
    """Expected next-item Recall@k of the Bayes-optimal predictor on :func:`synthetic_sessions`.

    The next item is ``succ[current]`` with probability ``p_follow + (1 - p_follow) / n_items``
    (the uniform draw may also hit it) and each other item with probability
    ``(1 - p_follow) / n_items``. The oracle ranks ``succ[current]`` first and any ``k - 1``
    other items after it, so it hits with probability::

        p_follow + (1 - p_follow) * min(k, n_items) / n_items

    This is the expectation over predicted events (every event but the first of a session),
    under full ranking of all ``n_items`` items, without excluding items seen in the session.

    Examples
    --------
    >>> synthetic_optimal_recall(200, 0.9, 20)
    0.91
    >>> synthetic_optimal_recall(10, 0.5, 20)
    1.0
    """
    if n_items < 1:
        raise ConfigError(f"n_items must be >= 1, got {n_items}")
    if not 0.0 <= p_follow <= 1.0:
        raise ConfigError(f"p_follow must be in [0, 1], got {p_follow}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return p_follow + (1.0 - p_follow) * min(k, n_items) / n_items


# ------------------------------------------------------------------------ baskets
def synthetic_baskets(
    n_users: int = 1000,
    n_items: int = 2000,
    *,
    mean_baskets: float = 16.0,
    max_baskets: int = 100,
    mean_size: float = 10.0,
    n_staples: float = 12.0,
    p_repeat: float = 0.6,
    zipf: float = 1.0,
    seed: int = 0,
) -> pl.DataFrame:
    """A basket log with an Instacart-like shape and a planted answer (vectorised).

    * Item popularity is Zipf: item of popularity rank ``r`` (1-based) has weight
      ``r ** -zipf``; item ids are shuffled so popularity does not follow the id.
    * User ``u`` has ``4 + G`` baskets, ``G ~ Geometric(1 / (mean_baskets - 3)) - 1``, capped at
      ``max_baskets`` (Instacart: 4..100 orders per user, mean ~17), and a personal set of
      ``1 + Poisson(n_staples - 1)`` *staples* drawn from the popularity (repeats merged).
    * A basket has ``1 + Poisson(mean_size - 1)`` slots; each slot is, with probability
      ``p_repeat``, a staple of the user (uniform among them), else an item drawn from the
      popularity; repeats inside a basket are merged (so baskets are a little smaller).
    * Context: ``order_dow`` uniform 0..6, ``order_hour_of_day`` ~ round(N(13.5, 3.5)) clipped
      to 0..23, ``days_since_prior_order`` 0 for a first order else ``min(30, Geometric(1/10))``;
      ``timestamp`` = cumulative days * 86400 + the order number (as the Instacart reader).

    The planted answer: a user's next basket holds each staple with probability about
    ``1 - (1 - p_repeat / n_staples_u) ** size``, so the user's own frequent items (P-TopFreq)
    recover most of it and popularity the rest.

    Returns
    -------
    polars.DataFrame
        ``session_id`` (user), ``basket_id``, ``item_id`` (external ids ``ITEM_ID_OFFSET + j``),
        ``timestamp`` and the three context columns.
    """
    if n_users < 1 or n_items < 2:
        raise ConfigError(f"need n_users >= 1 and n_items >= 2, got {n_users}, {n_items}")
    if not (mean_baskets > 4 and max_baskets >= 4 and mean_size >= 1 and n_staples >= 1):
        raise ConfigError("need mean_baskets > 4, max_baskets >= 4, mean_size >= 1, n_staples >= 1")
    if not 0.0 <= p_repeat <= 1.0:
        raise ConfigError(f"p_repeat must be in [0, 1], got {p_repeat}")
    rng = np.random.default_rng(seed)
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -float(zipf)
    cdf = np.cumsum(weights[rng.permutation(n_items)])
    cdf /= cdf[-1]

    def popular(n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), n_items - 1)

    n_b = np.minimum(4 + rng.geometric(1.0 / (mean_baskets - 3.0), n_users) - 1, max_baskets)
    n_st = 1 + rng.poisson(n_staples - 1.0, n_users)
    st_off = np.concatenate([[0], np.cumsum(n_st)])
    staples = popular(int(st_off[-1]))
    basket_user = np.repeat(np.arange(n_users), n_b)
    n_baskets = len(basket_user)
    sizes = 1 + rng.poisson(mean_size - 1.0, n_baskets)
    slot_basket = np.repeat(np.arange(n_baskets), sizes)
    slot_user = basket_user[slot_basket]
    repeat = rng.random(len(slot_basket)) < p_repeat
    pick = st_off[slot_user] + (rng.random(len(slot_basket)) * n_st[slot_user]).astype(np.int64)
    items = np.where(repeat, staples[pick], popular(len(slot_basket)))
    first_b = np.concatenate([[0], np.cumsum(n_b)[:-1]])
    order_number = np.arange(n_baskets) - np.repeat(first_b, n_b) + 1
    days = np.minimum(30, rng.geometric(0.1, n_baskets)).astype(np.float64)
    days[order_number == 1] = 0.0
    cum_days = np.cumsum(days) - np.repeat(np.cumsum(days)[first_b] - days[first_b], n_b)
    dow = rng.integers(0, 7, n_baskets).astype(np.float64)
    hour = np.clip(np.round(rng.normal(13.5, 3.5, n_baskets)), 0, 23)
    frame = pl.DataFrame(
        {
            Columns.session: slot_user.astype(np.int64),
            Columns.basket: slot_basket.astype(np.int64),
            Columns.item: (items + ITEM_ID_OFFSET).astype(np.int64),
            Columns.time: (cum_days * 86_400.0 + order_number)[slot_basket],
            Columns.order_dow: dow[slot_basket],
            Columns.order_hour: hour[slot_basket],
            Columns.days_since_prior: days[slot_basket],
        }
    )
    return frame.unique([Columns.basket, Columns.item], keep="first", maintain_order=True)


__all__ = [
    "synthetic_baskets",
    "ITEM_ID_OFFSET",
    "synthetic_optimal_recall",
    "synthetic_sessions",
    "synthetic_successors",
]
