"""seqrec serve: the API in-process (FastAPI TestClient), every bad request's 4xx, the
micro-batcher, hot reload, titles; and real HTTP against uvicorn started by a fixture."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from _serve import running_server, save_example, synthetic_frame  # noqa: E402
from seqrec.data.query import Query  # noqa: E402
from seqrec.exceptions import ConfigError, DataError  # noqa: E402
from seqrec.recommender import Recommender  # noqa: E402
from seqrec.serve import MicroBatcher, ServeConfig, create_app, load_model, read_titles  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("served")
    df = synthetic_frame()
    titles = {str(i): f"Item number {i}" for i in df["item_id"].unique().to_list()}
    return {
        "gru4rec": save_example("gru4rec", root / "gru4rec", df, item_titles=titles),
        "pop": save_example("pop", root / "models" / "pop", df),
        "markov": save_example("markov", root / "models" / "markov", df),
        "root": root / "models",
    }


@pytest.fixture(scope="module")
def client(models: dict[str, Path]):
    app = create_app(models["gru4rec"], ServeConfig(max_k=30, max_queries=5, max_session_length=50))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def known(models: dict[str, Path]) -> list[int]:
    return Recommender.load(models["gru4rec"]).vocab_.ids[:10].tolist()


def post(c, body, **kw):
    return c.post("/v1/recommend", json=body, **kw)


# ----------------------------------------------------------------------- answers
def test_one_query_matches_the_library(client, models, known):
    r = post(client, {"items": known[:3], "k": 5, "query_id": "s1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "gru4rec" and len(body["model_version"]) == 12
    (res,) = body["results"]
    rec = Recommender.load(models["gru4rec"])
    (want,) = rec.recommend_queries([Query(items=known[:3])], 5)
    assert res["query_id"] == "s1"
    assert res["items"] == want.items.tolist()
    np.testing.assert_allclose(res["scores"], want.scores, rtol=1e-6)
    assert res["unknown_items"] == [] and res["empty_history"] is False


def test_a_list_of_queries_exclusions_and_candidates(client, models, known):
    queries = [
        {"items": known[:2], "query_id": 1},
        {"items": known[2:4], "exclude": known[:5]},
        {"items": [known[0]], "candidates": known[5:9]},
        {"items": [], "query_id": "empty"},
    ]
    r = post(client, {"queries": queries, "k": 4, "exclude_seen": True})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    rec = Recommender.load(models["gru4rec"])
    want = rec.recommend_queries(
        [
            Query(items=known[:2]),
            Query(items=known[2:4], exclude=known[:5]),
            Query(items=[known[0]], candidates=known[5:9]),
            Query(items=[]),
        ],
        4,
        exclude_seen=True,
    )
    assert [x["items"] for x in res] == [w.items.tolist() for w in want]
    assert not set(res[1]["items"]) & set(known[:5])
    assert set(res[2]["items"]) <= set(known[5:9])
    assert [x["empty_history"] for x in res] == [False, False, False, True]
    assert res[3]["query_id"] == "empty"


def test_unknown_items_are_ignored_and_listed(client, known):
    r = post(client, {"items": [known[0], 987654321, known[1], 987654321], "exclude": [-5]})
    res = r.json()["results"][0]
    assert r.status_code == 200
    assert res["unknown_items"] == [987654321, -5] and res["empty_history"] is False
    only_unknown = post(client, {"items": [987654321]}).json()["results"][0]
    assert only_unknown["empty_history"] is True and only_unknown["unknown_items"] == [987654321]
    assert only_unknown["items"] == post(client, {"items": []}).json()["results"][0]["items"]


def test_titles_come_from_the_artifact(client, known):
    res = post(client, {"items": known[:2], "k": 3, "titles": True}).json()["results"][0]
    assert res["titles"] == [f"Item number {i}" for i in res["items"]]
    hits = client.get("/v1/items", params={"q": f"number {known[3]}"}).json()
    assert hits["has_titles"] and hits["items"][0] == {
        "item_id": known[3],
        "title": f"Item number {known[3]}",
    }
    assert len(client.get("/v1/items", params={"limit": 7}).json()["items"]) == 7


def test_model_health_docs_and_demo(client):
    info = client.get("/v1/model").json()
    assert info["model"] == "gru4rec" and info["task"] == "next-item"
    assert info["n_items"] == 40 and info["id_type"] == "int" and info["has_titles"]
    assert info["config"]["model"]["name"] == "gru4rec" and info["seqrec_version"]
    assert info["data_fingerprint"] and info["limits"]["max_k"] == 30
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    spec = client.get("/openapi.json").json()
    assert "RecommendRequest" in spec["components"]["schemas"]
    assert "/v1/recommend" in spec["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/demo")
    assert page.status_code == 200 and "seqrec" in page.text and "demo.js" in page.text
    assert "/v1/recommend" in client.get("/demo/demo.js").text
    assert client.get("/", follow_redirects=False).status_code in (302, 307)


# ------------------------------------------------------------------ bad requests
@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"items": [1], "k": 31}, 422, "--max-k"),
        ({"items": [1], "k": 0}, 422, "k"),
        ({"items": [1], "k": "ten"}, 422, "k"),
        ({"items": list(range(51))}, 422, "--max-session-length"),
        ({"queries": [{"items": [1]}] * 6}, 422, "--max-queries"),
        ({"items": [1], "exclude": list(range(1001))}, 422, "--max-exclude"),
        ({"items": [1], "candidates": list(range(10_001))}, 422, "--max-candidates"),
        ({"items": ["a1"]}, 422, "integers"),
        ({"items": [1.5]}, 422, "items.0"),
        ({"items": [True]}, 422, "items.0"),
        ({"items": [[1, 2]]}, 422, "items.0"),
        ({"items": [2**64]}, 422, "items.0"),
        ({"items": 5}, 422, "items"),
        ({"items": [1], "colour": "red"}, 422, "colour"),
        ({"items": [1], "queries": [{"items": [2]}]}, 422, "not both"),
        ({"baskets": [[1, 2], [3]]}, 422, "next-item model"),
        ({"queries": [{"items": [1], "k": 3}]}, 422, "queries.0.k"),
        ([{"items": [1]}], 422, "body"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_to_fix(client, body, status, says):
    r = post(client, body)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


def test_k_over_the_catalogue(models):
    app = create_app(models["pop"], ServeConfig(max_k=1000))
    with TestClient(app) as c:
        r = post(c, {"items": [], "k": 41})
        assert r.status_code == 422 and "catalogue" in r.json()["detail"]
        assert len(post(c, {"items": [], "k": 40}).json()["results"][0]["items"]) == 40


def test_body_size_json_and_method_errors(client):
    r = client.post(
        "/v1/recommend", content=b" " * (2 << 20), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["detail"]
    r = client.post(
        "/v1/recommend", content=b'{"items": [1,', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "Invalid JSON" in r.json()["detail"]
    r = client.post("/v1/recommend", content=b"items=1", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert client.get("/v1/recommend").status_code == 405
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/items", params={"limit": 51}).status_code == 422
    assert client.get("/v1/items", params={"q": "x" * 201}).status_code == 422
    assert client.get("/v1/items", params={"limit": "many"}).status_code == 422


def test_bad_server_settings_fail_at_start(models, tmp_path):
    with pytest.raises(ConfigError, match="token"):
        create_app(models["pop"], ServeConfig(allow_reload=True))
    with pytest.raises(ConfigError, match="--max-k"):
        create_app(models["pop"], ServeConfig(default_k=50, max_k=10))
    with pytest.raises(DataError, match="titles file not found"):
        create_app(models["pop"], ServeConfig(titles=str(tmp_path / "none.csv")))
    with pytest.raises(Exception, match="no saved model"):
        create_app(tmp_path / "missing")


# ---------------------------------------------------------------------- titles
def test_read_titles_formats(tmp_path):
    (tmp_path / "u.item").write_bytes(
        "1|Toy Story (1995)|01-Jan-1995||x\n2|Caf\xe9 (1990)|x\n".encode("latin-1")
    )
    assert read_titles(tmp_path / "u.item") == {"1": "Toy Story (1995)", "2": "Café (1990)"}
    (tmp_path / "movies.dat").write_text("1::Toy Story (1995)::Animation\n")
    assert read_titles(tmp_path / "movies.dat") == {"1": "Toy Story (1995)"}
    (tmp_path / "ml.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\n1\tToy Story\t1995\n"
    )
    assert read_titles(tmp_path / "ml.item") == {"1": "Toy Story"}
    (tmp_path / "products.csv").write_text('product_id,product_name,aisle_id\n7,"Milk, whole",3\n')
    assert read_titles(tmp_path / "products.csv") == {"7": "Milk, whole"}
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no id and title columns"):
        read_titles(tmp_path / "bad.csv")


def test_real_titles_of_ml100k(data_dir):
    path = data_dir / "ml-100k" / "ml-100k.item"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    titles = read_titles(path)
    assert len(titles) == 1682 and titles["50"] == "Star Wars"


# ------------------------------------------------------------------ micro-batching
def test_requests_arriving_together_are_scored_as_one_batch(models, known):
    loaded = load_model(models["gru4rec"])
    rec = loaded.rec
    sessions = [known[i : i + 3] for i in range(8)]

    async def go() -> tuple[list, MicroBatcher]:
        b = MicroBatcher(window_s=0.05, max_batch_size=64)
        await b.start(1)
        try:
            outs = await asyncio.gather(
                *(b.submit(loaded, [Query(items=s)], [[]], 5, False) for s in sessions)
            )
        finally:
            await b.stop()
        return outs, b

    outs, b = asyncio.run(go())
    assert b.n_batches == 1 and b.n_queries == 8
    for (got,), s in zip(outs, sessions, strict=True):
        (want,) = rec.recommend_queries([Query(items=s)], 5)
        assert got.items.tolist() == want.items.tolist()
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)


def test_max_batch_size_and_mixed_options(models, known):
    loaded = load_model(models["gru4rec"])

    async def go() -> tuple[list, MicroBatcher]:
        b = MicroBatcher(window_s=0.05, max_batch_size=4)
        await b.start(1)
        try:
            jobs = [
                b.submit(loaded, [Query(items=known[i : i + 2])], [[]], 3 + i % 2, i % 3 == 0)
                for i in range(8)
            ]
            outs = await asyncio.gather(*jobs)
        finally:
            await b.stop()
        return outs, b

    outs, b = asyncio.run(go())
    assert b.n_batches == 2
    for i, (got,) in enumerate(outs):
        (want,) = loaded.rec.recommend_queries(
            [Query(items=known[i : i + 2])], 3 + i % 2, exclude_seen=i % 3 == 0
        )
        assert got.items.tolist() == want.items.tolist()


# ------------------------------------------------------------------------ reload
def test_reload_is_off_by_default_and_guarded(client, models):
    assert client.post("/v1/admin/reload").status_code == 403
    app = create_app(models["gru4rec"], ServeConfig(allow_reload=True), reload_token=TOKEN)
    with TestClient(app) as c:
        assert c.post("/v1/admin/reload").status_code == 401
        bad = {"Authorization": "Bearer wrong"}
        assert c.post("/v1/admin/reload", headers=bad).status_code == 401
        ok = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/v1/admin/reload", headers=ok)
        assert r.status_code == 200 and r.json()["status"] == "reloaded"
        r = c.post("/v1/admin/reload", headers=ok, json={"name": "pop"})
        assert r.status_code == 422 and "--reload-root" in r.json()["detail"]


def test_reload_swaps_atomically_and_in_flight_requests_finish_on_the_old_model(
    models, known, tmp_path
):
    served = tmp_path / "served"
    shutil.copytree(models["gru4rec"], served)
    cfg = ServeConfig(allow_reload=True, reload_root=str(models["root"]), batch_window_ms=0)
    app = create_app(served, cfg, reload_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as c:
        v0 = c.get("/v1/model").json()["model_version"]
        # a request queued under the old model is scored by it even after the swap
        old = app.state.seqrec["model"]
        r = c.post("/v1/admin/reload", headers=auth, json={"name": "pop"})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "pop" and r.json()["previous_version"] == v0

        async def queued_before_swap():
            return await app.state.batcher.submit(old, [Query(items=known[:2])], [[]], 3, False)

        (res,) = c.portal.call(queued_before_swap)
        (want,) = old.rec.recommend_queries([Query(items=known[:2])], 3)
        assert res.items.tolist() == want.items.tolist()
        assert post(c, {"items": known[:2]}).json()["model"] == "pop"
        # a broken directory is refused; the server keeps serving
        broken = models["root"] / "broken"
        broken.mkdir(exist_ok=True)
        r = c.post("/v1/admin/reload", headers=auth, json={"name": "broken"})
        assert r.status_code == 422 and "still serving" in r.json()["detail"]
        assert post(c, {"items": known[:2]}).json()["model"] == "pop"
        for name in ["../gru4rec", "/etc", "..", ".hidden", "a/b", "nothere"]:
            r = c.post("/v1/admin/reload", headers=auth, json={"name": name})
            assert r.status_code == 422, name
        # the served directory itself, saved anew in place
        Recommender.load(models["markov"]).save(served)
        r = c.post("/v1/admin/reload", headers=auth)
        assert r.status_code == 200 and r.json()["model"] == "markov"


# --------------------------------------------------------------------- real HTTP
def test_real_http_server(models, known):
    with running_server(models["gru4rec"], ["--batch-window-ms", "2"]) as url:
        with httpx.Client(base_url=url) as h:
            assert h.get("/healthz").status_code == 200
            r = h.post("/v1/recommend", json={"items": known[:3], "k": 5})
            assert r.status_code == 200 and len(r.json()["results"][0]["items"]) == 5
            assert r.headers["content-type"] == "application/json"
            assert h.post("/v1/recommend", json={"items": [1], "k": 10_000}).status_code == 422
            r = h.post(
                "/v1/recommend",
                content=b"[" * 2_000_000,
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 413

        def one(i: int) -> list:
            with httpx.Client(base_url=url) as hc:
                resp = hc.post("/v1/recommend", json={"items": known[i % 8 : i % 8 + 2], "k": 3})
                return resp.json()["results"][0]["items"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(one, range(32)))
        rec = Recommender.load(models["gru4rec"])
        for i, items in enumerate(got):
            assert (
                items
                == rec.recommend_queries([Query(items=known[i % 8 : i % 8 + 2])], 3)[
                    0
                ].items.tolist()
            )
        assert json.loads(httpx.get(url + "/v1/model").text)["queries"] >= 32


def test_cli_refuses_a_bad_model_dir(tmp_path, capsys):
    from seqrec.cli import main

    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "model directory not found" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--workers", "0"]) == 2


@pytest.mark.slow
def test_two_workers(models, known):
    with running_server(models["gru4rec"], ["--workers", "2"]) as url:
        for _ in range(10):
            r = httpx.post(url + "/v1/recommend", json={"items": known[:2]})
            assert r.status_code == 200
        assert httpx.post(url + "/v1/admin/reload").status_code == 403
