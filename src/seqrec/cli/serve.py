"""``seqrec serve``: answer recommendation requests over HTTP (FastAPI app run by uvicorn)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from seqrec.cli._common import FORMATTER, artifact_dir, common_options, note
from seqrec.exceptions import ConfigError

CONFIG_ENV = "SEQREC_SERVE_CONFIG"
"""Environment variable carrying the server settings (JSON) to uvicorn's worker processes."""

EPILOG = """\
Serves a saved model (a run directory or its artifact/) on http://HOST:PORT:

  POST /v1/recommend   {"items": [50, 181], "k": 10}  or  {"queries": [{"items": [...]}, ...]}
  GET  /v1/model       the model: name, config, vocabulary size, metrics, versions
  GET  /healthz        liveness        GET /readyz   model loaded and warmed
  GET  /demo           a page to try it: search titles, click a session, see recommendations
  GET  /docs           the API (OpenAPI)

Binds to 127.0.0.1 unless --host says otherwise. Requests arriving together are scored as
one batch (--batch-window-ms, --max-batch-size). Hot reload (POST /v1/admin/reload) is off
unless --allow-reload is given; it needs the token in $SEQREC_RELOAD_TOKEN (or the variable
named by --reload-token-env) and loads the served directory again (or, with --reload-root
DIR, a directory directly under DIR named in the request). With --workers N > 1 reload by
sending SIGHUP to this process (workers are replaced one at a time).

examples:
  seqrec serve runs/ml100k_gru4rec                                  # http://127.0.0.1:8000/demo
  seqrec serve runs/ml100k_gru4rec --titles ../shared/data/ml-100k/ml-100k.item
  seqrec serve model/ --workers 2 --port 8080 --max-k 50
  SEQREC_RELOAD_TOKEN=secret seqrec serve model/ --allow-reload
"""


def add_parser(sub: Any) -> None:
    from seqrec.serve_config import ServeConfig

    d = ServeConfig()
    p = sub.add_parser(
        "serve",
        parents=[common_options()],
        help="serve a saved model over HTTP (JSON API, demo page, OpenAPI docs)",
        description="Serve a saved model over HTTP with FastAPI and uvicorn (pip install 'seqrec[serve]').",
        epilog=EPILOG,
        formatter_class=FORMATTER,
    )
    p.add_argument("model_dir", metavar="MODEL_DIR", help="run directory or saved model directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)"
    )
    p.add_argument(
        "--titles",
        metavar="FILE",
        help="item titles (u.item, movies.dat, RecBole .item, products.csv, CSV/TSV)",
    )
    p.add_argument("--device", default=d.device, help="torch device (default: cpu)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=d.threads,
        metavar="N",
        help=f"torch threads per worker (default: {d.threads})",
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=d.batch_window_ms,
        metavar="MS",
        help=f"micro-batch: wait this long for more requests (default: {d.batch_window_ms})",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=d.max_batch_size,
        metavar="N",
        help=f"micro-batch: most queries scored at once (default: {d.max_batch_size})",
    )
    for name, what in (
        ("default_k", "k when a request gives none"),
        ("max_k", "largest k a request may ask"),
        ("max_queries", "queries in one request"),
        ("max_session_length", "items in one query's history"),
        ("max_exclude", "items in one query's exclude list"),
        ("max_candidates", "items in one query's candidate set"),
        ("max_baskets", "baskets in one query"),
        ("max_body_bytes", "bytes in one request body"),
    ):
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(d, name),
            metavar="N",
            help=f"{what} (default: {getattr(d, name):,})",
        )
    p.add_argument("--allow-reload", action="store_true", help="enable POST /v1/admin/reload")
    p.add_argument(
        "--reload-token-env",
        default="SEQREC_RELOAD_TOKEN",
        metavar="VAR",
        help="environment variable holding the reload token (default: SEQREC_RELOAD_TOKEN)",
    )
    p.add_argument(
        "--reload-root", metavar="DIR", help="reload may choose a directory directly under DIR"
    )
    p.add_argument("--access-log", action="store_true", help="log every request (slower)")
    p.set_defaults(func=cmd_serve)


def _config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from seqrec.serve_config import ServeConfig

    try:
        return ServeConfig(
            device=args.device,
            threads=args.torch_threads,
            batch_window_ms=args.batch_window_ms,
            max_batch_size=args.max_batch_size,
            default_k=args.default_k,
            max_k=args.max_k,
            max_queries=args.max_queries,
            max_session_length=args.max_session_length,
            max_exclude=args.max_exclude,
            max_candidates=args.max_candidates,
            max_baskets=args.max_baskets,
            max_body_bytes=args.max_body_bytes,
            titles=args.titles,
            allow_reload=args.allow_reload,
            reload_root=args.reload_root,
            workers=args.workers,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(
            f"--{'-'.join(map(str, err['loc'])).replace('_', '-')}: {err['msg']}"
        ) from None


def worker_app() -> Any:
    """uvicorn factory for worker processes: the app from the settings the parent put in
    ``$SEQREC_SERVE_CONFIG``."""
    from seqrec.serve import ServeConfig, create_app

    spec = json.loads(os.environ[CONFIG_ENV])
    cfg = ServeConfig.model_validate(spec["config"])
    token = os.environ.get(spec["token_env"]) or None
    return create_app(spec["model_dir"], cfg, reload_token=token)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from seqrec.serve import create_app
    except ImportError as e:
        raise ConfigError(
            f"seqrec serve needs the serve extra: pip install 'seqrec[serve]' ({e})"
        ) from e
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    cfg = _config(args)
    model_dir = str(artifact_dir(args.model_dir))
    token = os.environ.get(args.reload_token_env) or None
    app = create_app(model_dir, cfg, reload_token=token)  # fails here on a bad model or titles
    log_level = "info" if getattr(args, "verbose", 0) else "warning"
    note(f"seqrec: serving {model_dir} on http://{args.host}:{args.port} (demo: /demo, API: /docs)")
    common = {
        "host": args.host,
        "port": args.port,
        "log_level": log_level,
        "access_log": args.access_log,
    }
    if args.workers == 1:
        uvicorn.run(app, **common)
        return 0
    del app  # each worker loads its own copy
    os.environ[CONFIG_ENV] = json.dumps(
        {
            "model_dir": model_dir,
            "config": cfg.model_dump(mode="json"),
            "token_env": args.reload_token_env,
        }
    )
    uvicorn.run("seqrec.cli.serve:worker_app", factory=True, workers=args.workers, **common)
    return 0
