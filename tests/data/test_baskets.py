"""Basket readers, datasets and the leave-last-basket-out split."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from seqrec.columns import BASKET_CONTEXT, Columns
from seqrec.data.baskets import read_basket_json, read_basket_log, read_instacart
from seqrec.data.sequences import SequenceData
from seqrec.data.synthetic import synthetic_baskets
from seqrec.data.vocab import Vocabulary
from seqrec.datasets import load_dataset, load_titles
from seqrec.exceptions import DataError, SchemaError
from seqrec.split import leave_last_out

DATA = Path(os.environ.get("SEQREC_DATA", "../shared/data"))
needs_instacart = pytest.mark.skipif(
    not (DATA / "instacart" / "orders.csv.gz").is_file(),
    reason="Instacart sample not in SEQREC_DATA",
)
needs_tafeng = pytest.mark.skipif(
    not (DATA / "tafeng" / "tafeng_merged.json.gz").is_file(), reason="Ta-Feng not in SEQREC_DATA"
)


def _write_instacart(folder: Path, orders: str, prior: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text(
        "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
        + orders
    )
    (folder / "order_products__prior.csv").write_text(
        "order_id,product_id,add_to_cart_order,reordered\n" + prior
    )
    return folder


def test_instacart_reader_orders_baskets_and_context(tmp_path):
    f = _write_instacart(
        tmp_path / "ic",
        # user 7's orders listed out of order; order 3 is 'test' (no products)
        "2,7,prior,2,1,9,0.0\n1,7,prior,1,0,8,\n3,7,test,3,2,10,5.0\n4,8,prior,1,3,11,\n",
        "1,100,1,0\n1,101,2,0\n2,101,1,1\n2,100,2,1\n4,100,1,0\n",
    )
    df = read_instacart(f)
    assert df.columns == [
        Columns.session,
        Columns.basket,
        Columns.item,
        Columns.time,
        *BASKET_CONTEXT,
    ]
    assert df.get_column(Columns.basket).to_list() == [1, 1, 2, 2, 4]
    assert df.get_column(Columns.item).to_list() == [100, 101, 101, 100, 100]  # add-to-cart order
    # same-day orders keep order_number order: days*86400 + order_number
    assert df.get_column(Columns.time).to_list() == [1.0, 1.0, 2.0, 2.0, 1.0]
    assert df.get_column(Columns.days_since_prior).to_list() == [0.0, 0.0, 0.0, 0.0, 0.0]
    d = SequenceData.from_frame(df, Vocabulary.fit(df[Columns.item]))
    assert d.n_baskets == 3 and d.context_names == BASKET_CONTEXT


def test_instacart_reader_errors(tmp_path):
    with pytest.raises(DataError, match="orders.csv and order_products__prior.csv"):
        read_instacart(tmp_path)
    f = _write_instacart(tmp_path / "a", "1,7,prior,1,0,8,\n", "9,100,1,0\n")
    with pytest.raises(DataError, match="absent from orders.csv"):
        read_instacart(f)
    (f / "orders.csv").write_text("order_id,user_id\n1,7\n")
    with pytest.raises(SchemaError, match="lacks column"):
        read_instacart(f)


def test_basket_json_reader(tmp_path):
    p = tmp_path / "b.json.gz"
    p.write_bytes(gzip.compress(json.dumps({"3": [[1, 2, 2], [3]], "4": [[2], [1], [5]]}).encode()))
    df = read_basket_json(p)
    assert df.get_column(Columns.session).to_list() == [3, 3, 3, 4, 4, 4]
    assert df.get_column(Columns.item).to_list() == [1, 2, 3, 2, 1, 5]  # repeat merged
    assert df.get_column(Columns.basket).to_list() == [0, 0, 1, 0, 1, 2]
    for bad, msg in (
        ([1, 2], "JSON object"),
        ({"u": 5}, "not a list of baskets"),
        ({"u": [[1], []]}, "empty basket"),
        ({"u": [[1], [2.5]]}, "item ids"),
    ):
        q = tmp_path / "bad.json"
        q.write_text(json.dumps(bad))
        with pytest.raises(DataError, match=msg):
            read_basket_json(q)
    (tmp_path / "trunc.json").write_text('{"u": [[1, 2]')
    with pytest.raises(DataError, match="not readable"):
        read_basket_json(tmp_path / "trunc.json")


def test_basket_log_by_order_id_or_time(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("cust,order,sku,t\n1,a,10,5\n1,a,11,5\n1,b,10,9\n2,c,12,1\n")
    by_order = read_basket_log(
        p, columns={"user_id": "cust", "basket_id": "order", "item_id": "sku", "timestamp": "t"}
    )
    assert by_order.get_column(Columns.basket).to_list() == ["a", "a", "b", "c"]
    by_time = read_basket_log(p, columns={"user_id": "cust", "item_id": "sku", "timestamp": "t"})
    assert by_time.get_column(Columns.basket).to_list() == [1, 1, 2, 1]
    with pytest.raises(DataError, match="timestamp"):  # a basket log needs its order
        read_basket_log(p, columns={"user_id": "cust", "item_id": "sku"})


def test_leave_last_basket_out_holds_out_whole_baskets():
    df = synthetic_baskets(50, 100, seed=1)
    s = leave_last_out(df)
    assert s.protocol["unit"] == "basket" and s.protocol["sessions_held_out"] == 50
    last = df.group_by(Columns.session).agg(pl.col(Columns.time).max().alias("_last"))
    t = s.test.filter(pl.col("is_target")).join(last, on=Columns.session)
    assert (t[Columns.time] == t["_last"]).all()  # targets = every item of the last basket
    n_last = (
        df.join(last, on=Columns.session).filter(pl.col(Columns.time) == pl.col("_last")).height
    )
    assert t.height == n_last
    # train + valid targets + test targets = every row once
    v = s.valid.filter(pl.col("is_target"))
    assert s.train.height + v.height + t.height == df.height
    assert v.join(t, on=[Columns.session, Columns.basket], how="inner").height == 0
    # SequenceData: one target basket per user, the history = every basket before it
    vocab = Vocabulary.fit(df[Columns.item])
    d = SequenceData.from_frame(s.test, vocab)
    assert len(d.target_baskets()) == 50
    sb = d.sequence_baskets()
    assert np.array_equal(d.target_baskets(), sb[1:] - 1)


@needs_instacart
def test_instacart_sample_counts_match_its_source_md():
    df = load_dataset("instacart")
    assert df.height == 155_824
    assert df.get_column(Columns.session).n_unique() == 1_000
    assert df.get_column(Columns.basket).n_unique() == 15_968
    assert df.get_column(Columns.item).n_unique() == 14_887
    titles = load_titles("instacart")
    assert titles.height == 49_688 and titles.filter(pl.col(Columns.item) == 1)["title"][0] == (
        "Chocolate Sandwich Cookies"
    )


@needs_tafeng
def test_tafeng_counts_match_its_source_md():
    df = load_dataset("tafeng")
    assert df.height == 571_933
    assert df.get_column(Columns.session).n_unique() == 13_858
    d = SequenceData.from_frame(df, Vocabulary.fit(df[Columns.item]))
    assert d.n_baskets == 91_227 and d.n_items - 1 == 11_997
