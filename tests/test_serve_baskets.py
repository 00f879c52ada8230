"""Serving next-basket models: a user's baskets in, the next basket out (same code path as
``Recommender.recommend_queries``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from seqrec.data.query import Query  # noqa: E402
from seqrec.models.basket.topfreq import GPTopFreqConfig  # noqa: E402
from seqrec.recommender import Recommender  # noqa: E402
from seqrec.serve import ServeConfig, create_app  # noqa: E402
from seqrec.testing import planted_basket_task  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    train, _ = planted_basket_task()
    rec = Recommender(GPTopFreqConfig()).fit(train)
    path = rec.save(Path(tmp_path_factory.mktemp("nb")) / "gp")
    with TestClient(create_app(path, ServeConfig(max_baskets=5))) as c:
        yield c, rec


def test_baskets_in_next_basket_out(served):
    c, rec = served
    ids = rec.vocab_.ids[:6].tolist()
    baskets = [[ids[0], ids[1]], [ids[2], ids[0], -99]]
    r = c.post("/v1/recommend", json={"baskets": baskets, "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    res = body["results"][0] if "results" in body else body
    ref = rec.recommend_queries([Query(baskets=[[ids[0], ids[1]], [ids[2], ids[0]]])], k=5)[0]
    assert res["items"] == ref.items.tolist()
    np.testing.assert_allclose(res["scores"], ref.scores, rtol=1e-6)
    assert res["unknown_items"] == [-99]
    empty = c.post("/v1/recommend", json={"baskets": [], "k": 3}).json()
    empty = empty["results"][0] if "results" in empty else empty
    assert empty["empty_history"] is True and len(empty["items"]) == 3


@pytest.mark.parametrize(
    "body,says",
    [
        ({"items": [1, 2]}, "baskets"),
        ({"baskets": [[1]] * 6}, "--max-baskets"),
        ({"baskets": [[1]], "context": [[1.0], [2.0]]}, "one row per basket"),
    ],
)
def test_bad_basket_requests_get_422(served, body, says):
    c, _ = served
    r = c.post("/v1/recommend", json=body)
    assert r.status_code == 422, r.text
    assert says in r.text
