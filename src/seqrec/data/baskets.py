"""Readers for next-basket data: Instacart, Ta-Feng, and any user/basket/item log.

Every reader returns a canonical basket frame: one row per (user, basket, item) with

* ``session_id`` — the user (each user's history is one sequence of baskets);
* ``basket_id`` — the order / basket (unique within its user);
* ``item_id`` — the product (a basket holds each product once: repeats are dropped);
* ``timestamp`` — Float64 seconds giving the baskets' order (see each reader: Instacart and
  Ta-Feng have no absolute times, only a relative clock);
* optionally the basket context columns of :data:`~seqrec.columns.BASKET_CONTEXT`
  (``order_dow``, ``order_hour_of_day``, ``days_since_prior_order``), constant within a basket.

:meth:`seqrec.data.SequenceData.from_frame` turns such a frame into basket sequences (one more
level of offsets), and ``leave_last_out`` holds out whole baskets when a ``basket_id`` column
is present.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from seqrec.columns import BASKET_CONTEXT, Columns
from seqrec.data.readers import TimeUnit, read_interactions
from seqrec.exceptions import DataError, SchemaError

logger = logging.getLogger(__name__)

_DAY = 86_400.0
_QUOTE = 200  # at most this many characters of the input are quoted in an error


def _short(x: object) -> str:
    s = repr(x)
    return s if len(s) <= _QUOTE else s[: _QUOTE - 3] + "..."


def _read_csv(path: Path, required: tuple[str, ...], what: str) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(f"{what}: {path} not found; expected the Kaggle file of that name")
    try:
        df = pl.read_csv(path, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{what}: could not read {path}: {str(e).splitlines()[0][:_QUOTE]}") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{what}: {path.name} lacks column(s) {missing}; it has {df.columns[:20]}. "
            "Is this the original Kaggle file?"
        )
    return df


def _find(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


def read_instacart(folder: str | Path) -> pl.DataFrame:
    """Read the Instacart Online Grocery Shopping files of ``folder`` into a basket frame.

    Uses ``orders.csv`` and ``order_products__prior.csv`` (each optionally ``.gz``), plus
    ``order_products__train.csv`` when present (the full Kaggle data: the ``train`` orders'
    products). ``test`` orders have no published products and are left out (counted in the
    log), as is any order without products.

    Baskets are ordered by ``order_number``. Instacart has no absolute times: ``timestamp`` is
    a relative clock per user, ``days since the user's first order * 86400 + order_number``
    seconds (the days are the cumulative ``days_since_prior_order``; adding the order
    number keeps two orders on the same day in order). Context columns: ``order_dow``,
    ``order_hour_of_day``, ``days_since_prior_order`` (0 for a user's first order).

    Raises
    ------
    DataError
        A file is missing or unreadable, or no order has products.
    SchemaError
        A file lacks a Kaggle column.
    """
    folder = Path(folder)
    what = "instacart"
    orders_path = _find(folder, "orders.csv")
    prior_path = _find(folder, "order_products__prior.csv")
    if orders_path is None or prior_path is None:
        raise DataError(
            f"{what}: {folder} needs orders.csv and order_products__prior.csv (optionally .gz) "
            "from Kaggle's 'Instacart Market Basket Analysis'"
        )
    orders = _read_csv(
        orders_path,
        (
            "order_id",
            "user_id",
            "eval_set",
            "order_number",
            "order_dow",
            "order_hour_of_day",
            "days_since_prior_order",
        ),
        what,
    )
    parts = [_read_csv(prior_path, ("order_id", "product_id", "add_to_cart_order"), what)]
    train_path = _find(folder, "order_products__train.csv")
    if train_path is not None:
        parts.append(_read_csv(train_path, ("order_id", "product_id", "add_to_cart_order"), what))
    lines = pl.concat([p.select("order_id", "product_id", "add_to_cart_order") for p in parts])
    orders = orders.with_columns(pl.col("days_since_prior_order").cast(pl.Float64).fill_null(0.0))
    orders = orders.sort(["user_id", "order_number"]).with_columns(
        (
            pl.col("days_since_prior_order").cum_sum().over("user_id") * _DAY
            + pl.col("order_number").cast(pl.Float64)
        ).alias(Columns.time)
    )
    unknown_orders = lines.join(orders.select("order_id"), on="order_id", how="anti").height
    if unknown_orders:
        raise DataError(
            f"{what}: {unknown_orders} order line(s) name an order_id absent from "
            f"{orders_path.name}; the files do not belong together"
        )
    frame = (
        orders.join(lines, on="order_id", how="inner")
        .sort(["user_id", "order_number", "add_to_cart_order"])
        .select(
            pl.col("user_id").alias(Columns.session),
            pl.col("order_id").alias(Columns.basket),
            pl.col("product_id").alias(Columns.item),
            pl.col(Columns.time),
            pl.col("order_dow").cast(pl.Float64).alias(Columns.order_dow),
            pl.col("order_hour_of_day").cast(pl.Float64).alias(Columns.order_hour),
            pl.col("days_since_prior_order").alias(Columns.days_since_prior),
        )
        .unique([Columns.session, Columns.basket, Columns.item], keep="first", maintain_order=True)
    )
    if frame.height == 0:
        raise DataError(f"{what}: no order in {orders_path.name} has products")
    n_empty = orders.height - frame.get_column(Columns.basket).n_unique()
    logger.info(
        "instacart: %d order lines, %d baskets, %d users; %d order(s) without products left out "
        "(e.g. 'test' orders)",
        frame.height,
        orders.height - n_empty,
        frame.get_column(Columns.session).n_unique(),
        n_empty,
    )
    return frame


def read_instacart_products(folder: str | Path) -> pl.DataFrame:
    """``products.csv`` of an Instacart folder as ``item_id, title`` (for recommendations)."""
    folder = Path(folder)
    path = _find(folder, "products.csv")
    if path is None:
        raise DataError(f"instacart: {folder} has no products.csv (or products.csv.gz)")
    df = _read_csv(path, ("product_id", "product_name"), "instacart")
    return df.select(
        pl.col("product_id").alias(Columns.item), pl.col("product_name").alias("title")
    )


def read_basket_json(path: str | Path) -> pl.DataFrame:
    """Read ``{user: [[items], [items], ...]}`` JSON (optionally gzip) into a basket frame —
    the format of the Ta-Feng / Dunnhumby files of the Next-Basket Reality Check.

    Baskets keep their list order (oldest first). The data has no times: ``timestamp`` is
    the basket's position times 86400 (one pseudo-day per basket) and ``basket_id`` the
    position. Repeats inside a basket are dropped; empty baskets are rejected.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    try:
        with p.open("rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(p, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            raw = json.load(fh)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{p}: not readable as (gzipped) JSON: {_short(str(e))}") from e
    if not isinstance(raw, dict) or not raw:
        raise SchemaError(
            f"{p}: expected a non-empty JSON object {{user: [[items], ...]}}, got "
            f"{type(raw).__name__}"
        )
    users = list(raw)
    histories = list(raw.values())
    bad = next((u for u, h in zip(users, histories, strict=True) if not isinstance(h, list)), None)
    if bad is not None:
        raise SchemaError(
            f"{p}: user {_short(bad)} maps to {_short(raw[bad])}, not a list of baskets"
        )
    n_baskets = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    baskets = list(itertools.chain.from_iterable(histories))
    if not all(isinstance(b, list) for b in baskets):
        b = next(b for b in baskets if not isinstance(b, list))
        raise SchemaError(f"{p}: a basket must be a list of item ids, got {_short(b)}")
    sizes = np.fromiter((len(b) for b in baskets), dtype=np.int64, count=len(baskets))
    if (sizes == 0).any():
        j = int(np.flatnonzero(sizes == 0)[0])
        u = users[int(np.searchsorted(np.cumsum(n_baskets), j, side="right"))]
        raise DataError(f"{p}: user {_short(u)} has an empty basket; drop it or add its items")
    items = list(itertools.chain.from_iterable(baskets))
    try:
        item_col = pl.Series(Columns.item, items, strict=True)
    except (TypeError, pl.exceptions.PolarsError) as e:
        raise SchemaError(
            f"{p}: item ids must be all integers or all strings ({_short(str(e))})"
        ) from e
    if item_col.dtype not in (pl.Int64, pl.Int32, pl.String):
        raise SchemaError(f"{p}: item ids must be integers or strings, got {item_col.dtype}")
    user_of_basket = np.repeat(np.arange(len(users)), n_baskets)
    first_basket = np.concatenate([[0], np.cumsum(n_baskets)[:-1]])
    pos = np.arange(len(baskets)) - np.repeat(first_basket, n_baskets)
    user_col = pl.Series(Columns.session, users)
    if all(u.isdigit() for u in users):
        user_col = user_col.cast(pl.Int64)
    frame = pl.DataFrame(
        {
            Columns.session: user_col.gather(np.repeat(user_of_basket, sizes)),
            Columns.basket: np.repeat(pos, sizes).astype(np.int64),
            Columns.item: item_col.cast(pl.Int64) if item_col.dtype == pl.Int32 else item_col,
            Columns.time: np.repeat(pos * _DAY, sizes).astype(np.float64),
        }
    ).unique([Columns.session, Columns.basket, Columns.item], keep="first", maintain_order=True)
    logger.info("%s: %d users, %d baskets, %d rows", p.name, len(users), len(baskets), frame.height)
    return frame


def read_basket_log(
    path: str | Path,
    *,
    columns: Mapping[str, str | int] | None = None,
    sep: str | None = None,
    time_unit: TimeUnit = "auto",
) -> pl.DataFrame:
    """Read a generic user/basket/item log (CSV/TSV/Parquet) into a basket frame.

    ``columns`` maps canonical names to the file's (as in
    :func:`~seqrec.data.readers.read_interactions`), e.g. ``{"user_id": "customer",
    "basket_id": "order", "item_id": "sku", "timestamp": "date"}``. Baskets are given by a
    ``basket_id`` column, or — without one — by the distinct timestamps of each user (all
    items a user bought at one time form a basket). Context columns named as in
    :data:`~seqrec.columns.BASKET_CONTEXT` are kept when the mapping names them.
    """
    columns = dict(columns or {})
    context = {k: v for k, v in columns.items() if k in BASKET_CONTEXT}
    base = {k: v for k, v in columns.items() if k not in BASKET_CONTEXT}
    df = read_interactions(path, columns=base or None, sep=sep, time_unit=time_unit)
    if Columns.session not in df.columns:
        raise SchemaError(f"{path}: a basket log needs a user column (user_id)")
    if Columns.basket not in df.columns:
        if Columns.time not in df.columns:
            raise SchemaError(
                f"{path}: baskets need a basket_id column or a timestamp column (the items a "
                "user bought at one time form a basket); map one with columns={...}"
            )
        df = df.with_columns(
            pl.col(Columns.time)
            .rank("dense")
            .over(Columns.session)
            .cast(pl.Int64)
            .alias(Columns.basket)
        )
    if Columns.time not in df.columns:  # file order of the baskets
        df = df.with_columns(
            pl.int_range(pl.len())
            .min()
            .over([Columns.session, Columns.basket])
            .cast(pl.Float64)
            .alias(Columns.time)
        )
    if context:
        raw = _raw_columns(path, sep, list(context.values()))
        for canon, name in context.items():
            df = df.with_columns(raw.get_column(str(name)).cast(pl.Float64).alias(canon))
    keep = [Columns.session, Columns.basket, Columns.item, Columns.time, *context]
    return df.select(keep).unique(
        [Columns.session, Columns.basket, Columns.item], keep="first", maintain_order=True
    )


def _raw_columns(path: str | Path, sep: str | None, names: list[str | int]) -> pl.DataFrame:
    p = Path(path)
    try:
        if p.suffix.lower() in {".parquet", ".pq"}:
            df = pl.read_parquet(p)
        else:
            df = pl.read_csv(p, separator=sep or ",", infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as e:
        raise DataError(f"{p}: could not read context columns: {_short(str(e))}") from e
    missing = [n for n in names if str(n) not in df.columns]
    if missing:
        raise SchemaError(
            f"{p}: context column(s) {missing} not in the file; it has {df.columns[:20]}"
        )
    return df.select([str(n) for n in names])


__all__ = ["read_basket_json", "read_basket_log", "read_instacart", "read_instacart_products"]
