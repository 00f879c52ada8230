"""The RecBole side of the next-item benchmark: RecBole 1.2.1's GRU4Rec / SASRec on seqrec's split.

RecBole is *not* a dependency of seqrec. It lives in its own virtual environment
(``benchmarks/.venv-recbole``, pins in ``benchmarks/recbole_requirements.txt``), and this one
file plays two roles:

* **library / caller** (plain CPython of the seqrec env, standard library + polars only):
  :func:`ensure_venv` builds the venv; :func:`run_recbole` writes the events in RecBole's
  atomic format into a temporary folder and runs this same file with the venv's python as
  ``python recbole_side.py --worker ...``; it returns the JSON result.
* **worker** (``--worker``, inside the venv): trains and evaluates RecBole's model, timing
  every training epoch and validation pass, and writes the JSON atomically.

Same split as seqrec (:func:`seqrec.split.leave_last_out`, ``n=1, valid=True``): each sequence
is ordered by timestamp with a *stable* sort (ties keep input row order); the last event is the
test target, the one before the validation target; all items are ranked; seen items are not
masked. RecBole sorts by its time field, which it stores as float32 (unix seconds lose up to
64 s there, creating ties that do not exist in the data), so the atomic file's ``timestamp``
is the event's rank in the stable order ``(timestamp, input row)``: unique integers below
2**24, exact in float32, so RecBole cannot order anything differently. The worker checks this
(every test/valid target and every test history equal the expected ones).

Caller CLI (from the repository root, with the seqrec env)::

    SEQREC_DATA=../shared/data python benchmarks/recbole_side.py --model SASRec --epochs 2 \\
        --threads 2 --out benchmarks/results/recbole_sasrec.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Default venv folder (``benchmarks/.venv-recbole``, ignored by git).
VENV_DIR = HERE / ".venv-recbole"
#: Pins installed into the venv.
REQUIREMENTS = HERE / "recbole_requirements.txt"
#: Name of the RecBole dataset (not ``ml-100k``: RecBole would load its own ml-100k.yaml).
DATASET_NAME = "seqrec_events"
MODELS = ("GRU4Rec", "SASRec")
_STAMP = ".seqrec-requirements.sha256"

# ------------------------------------------------------------------------------- caller side


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def ensure_venv(path: Path = VENV_DIR, *, quiet: bool = False) -> Path:
    """Create the RecBole venv at ``path`` if missing and install the pins; return its python.

    Idempotent: a stamp file in the venv holds the sha256 of ``recbole_requirements.txt``;
    when it matches, nothing is done. A half-made venv (no python) is removed and rebuilt.
    Installs take ~45 s here (torch comes from the local CPU wheel).
    """
    path = Path(path).resolve()
    python = _venv_python(path)
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = path / _STAMP
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / (path.name + ".lock")
    with open(lock, "w") as fh:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX)  # two benchmark processes must not build it together
        if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
            return python
        t0 = time.perf_counter()
        if not python.exists() and path.exists():
            shutil.rmtree(path)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        cmd = [str(python), "-m", "pip", "install", "-r", str(REQUIREMENTS)]
        if quiet:
            cmd.insert(4, "-q")
        print(f"[recbole_side] installing RecBole into {path} ...", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stderr if not quiet else subprocess.DEVNULL)
        stamp.write_text(want + "\n")
        print(
            f"[recbole_side] venv ready in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return python


def _read_frame(inter_frame_or_path: Any) -> Any:
    """A polars frame from a polars/pandas frame or a CSV/Parquet path (canonical columns)."""
    import polars as pl

    obj = inter_frame_or_path
    if isinstance(obj, pl.DataFrame):
        return obj
    if isinstance(obj, (str, Path)):
        p = Path(obj)
        return pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p)
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas
        return pl.from_pandas(obj)
    raise TypeError(f"expected a polars/pandas frame or a .csv/.parquet path, got {type(obj)}")


def write_atomic_inter(frame: Any, folder: Path) -> dict[str, Any]:
    """Write ``folder/<DATASET_NAME>/<DATASET_NAME>.inter`` in seqrec's stable order.

    The sequence key is ``session_id`` (falls back to ``user_id``). The ``timestamp`` field is
    the rank of the event in the stable sort by ``(timestamp, input row)``; per sequence that is
    exactly seqrec's order. Returns the expected per-sequence item lists (for the worker's
    check) and counts.
    """
    import polars as pl

    df = _read_frame(frame)
    key = "session_id" if "session_id" in df.columns else "user_id"
    for col in (key, "item_id", "timestamp"):
        if col not in df.columns:
            raise ValueError(
                f"the frame needs columns session_id/user_id, item_id, timestamp; has {df.columns}"
            )
    d = (
        df.select(
            pl.col(key).alias("u"), pl.col("item_id").alias("i"), pl.col("timestamp").alias("t")
        )
        .with_row_index("row")
        .sort(["t", "row"])  # polars sorts are stable; "row" makes the tie-break explicit anyway
        .with_row_index("rank")
    )
    if d.height >= 2**24:
        raise ValueError("more than 2**24 events: ranks would not be exact in RecBole's float32")
    out = folder / DATASET_NAME
    out.mkdir(parents=True, exist_ok=True)
    inter = d.select(
        pl.col("u").cast(pl.String).alias("user_id:token"),
        pl.col("i").cast(pl.String).alias("item_id:token"),
        pl.col("rank").cast(pl.Int64).alias("timestamp:float"),
    )
    inter.write_csv(out / f"{DATASET_NAME}.inter", separator="\t")
    seqs = d.sort(["u", "rank"]).group_by("u", maintain_order=True).agg(pl.col("i").cast(pl.String))
    expected = {str(u): items for u, items in seqs.iter_rows()}
    return {
        "expected": expected,
        "events": d.height,
        "sequences": len(expected),
        "items": d.get_column("i").n_unique(),
        "timestamp_ties_in_input": int(d.height - d.select(pl.struct("u", "t").n_unique()).item()),
    }


def run_recbole(
    model: str,
    inter_frame_or_path: Any,
    *,
    epochs: int,
    threads: int,
    out_json: Path,
    extra: dict | None = None,
    venv: Path = VENV_DIR,
    keep_tmp: bool = False,
    log_to: Any = None,
) -> dict:
    """Run RecBole's ``model`` (``"GRU4Rec"`` or ``"SASRec"``) in the venv; return its JSON.

    Parameters
    ----------
    model
        ``"GRU4Rec"`` or ``"SASRec"``.
    inter_frame_or_path
        Canonical events (polars or pandas frame, or a .csv/.parquet path) with
        ``session_id`` (or ``user_id``), ``item_id``, ``timestamp``, e.g.
        ``seqrec.datasets.load_dataset("ml-100k")``.
    epochs, threads
        Training epochs (validation after each) and ``torch.set_num_threads``.
    out_json
        Where the worker writes the result (atomically).
    extra
        RecBole config overrides (hyper-parameters, ``seed``, ...), recorded in the JSON.
    venv
        The venv folder (built by :func:`ensure_venv` when needed).
    keep_tmp
        Keep the temporary folder (atomic file, RecBole log, checkpoint); it is always kept
        when the worker fails.
    log_to
        File object for the worker's console output (RecBole's log); default ``sys.stderr``.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    python = ensure_venv(venv)
    out_json = Path(out_json).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="recbole-side-"))
    ok = False
    try:
        info = write_atomic_inter(inter_frame_or_path, tmp)
        (tmp / "expected.json").write_text(json.dumps(info.pop("expected")))
        cmd = [
            str(python), str(Path(__file__).resolve()), "--worker",
            "--model", model, "--epochs", str(epochs), "--threads", str(threads),
            "--data-path", str(tmp), "--out", str(out_json),
            "--extra", json.dumps(extra or {}), "--input-info", json.dumps(info),
        ]  # fmt: skip
        env = dict(os.environ)
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # RecBole's torch.load of its checkpoint
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        env.pop("PYTHONPATH", None)  # keep the seqrec env out of the venv
        t0 = time.perf_counter()
        stream = log_to if log_to is not None else sys.stderr
        proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=stream, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(
                f"RecBole worker failed (exit {proc.returncode}); its files are in {tmp}"
            )
        result = json.loads(out_json.read_text())
        result["timing"]["subprocess_wall_s"] = round(wall, 3)
        _write_json(out_json, result)
        ok = True
        return result
    finally:
        if ok and not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _print_table(r: dict) -> None:
    t = r["test"]
    print(f"RecBole {r['recbole_version']} {r['model']} on {r['input']['events']} events, "
          f"{r['epochs']} epoch(s), {r['threads']} thread(s)")  # fmt: skip
    print("epoch | train s | valid s | valid NDCG@10")
    for e in r["epochs_log"]:
        print(
            f"{e['epoch']:5d} | {e['train_s']:7.1f} | {e['valid_s']:7.2f} | {e['valid_ndcg@10']:.4f}"
        )
    b = r["best"]
    print(f"best epoch {b['epoch']} (valid NDCG@10 {b['valid_ndcg@10']:.4f}) after "
          f"{b['train_s_cum']:.1f} s training + {b['valid_s_cum']:.1f} s validation")  # fmt: skip
    print("test:", ", ".join(f"{k}={t[k]:.4f}" for k in
                              ("recall@10", "recall@20", "mrr@20", "ndcg@10", "ndcg@20")))  # fmt: skip
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB, worker wall {r['timing']['wall_s']:.0f} s, "
          f"checks {'OK' if r['checks']['all_ok'] else 'FAILED'}")  # fmt: skip


def _caller_main(args: argparse.Namespace) -> int:
    from seqrec.datasets import load_dataset

    frame = load_dataset(args.dataset, data_dir=args.data_dir)
    extra = json.loads(args.extra) if args.extra else {}
    result = run_recbole(
        args.model, frame, epochs=args.epochs, threads=args.threads, out_json=Path(args.out),
        extra=extra, venv=Path(args.venv), keep_tmp=args.keep_tmp,
    )  # fmt: skip
    _print_table(result)
    return 0 if result["checks"]["all_ok"] else 1


# ------------------------------------------------------------------------------- worker side

HISTORY_MASKING = (
    "none: for sequential models RecBole 1.2.1's FullSortEvalDataLoader returns no history "
    "index (history_index is None in Trainer._full_sort_batch_eval), so items seen before are "
    "ranked like any other; only column 0 (RecBole's padding item) is set to -inf"
)
ORDERING = (
    "atomic timestamp = rank of the event in the stable sort by (timestamp, input row); RecBole "
    "sorts by (user, timestamp) for its data augmentation and by timestamp before the "
    "leave-one-out split; with unique ranks its order per user is exactly seqrec's"
)


def _worker_main(args: argparse.Namespace) -> int:
    import resource

    t_start = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    extra = json.loads(args.extra)
    data_path = Path(args.data_path)
    config_dict: dict[str, Any] = {
        # data: our atomic file, nothing filtered, nothing deduplicated
        "data_path": str(data_path),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "rm_dup_inter": None,
        "val_interval": None,
        "filter_inter_by_user_or_item": False,
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "MAX_ITEM_LIST_LENGTH": 50,
        # protocol: sequential leave-one-out, full ranking
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "mode": "full",
            "group_by": "user",
        },
        "metrics": ["Recall", "MRR", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 6,
        # training
        "epochs": args.epochs,
        "eval_step": 1,
        "stopping_step": 10**9,
        "train_neg_sample_args": None,  # loss_type CE (RecBole's default for both models)
        # machine
        "use_gpu": False,
        "gpu_id": "",
        "worker": 0,
        "show_progress": False,
        "checkpoint_dir": str(data_path / "saved"),
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
    }
    config_dict.update(extra)
    config = Config(model=args.model, dataset=DATASET_NAME, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)

    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_s = time.perf_counter() - t0

    checks = _checks(args, dataset, train_data, valid_data, test_data, data_path)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    n_params = sum(p.numel() for p in model.parameters())
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    log: list[dict[str, Any]] = []
    saved_epochs: list[int] = []
    orig_train, orig_valid, orig_save = (
        trainer._train_epoch,
        trainer._valid_epoch,
        trainer._save_checkpoint,
    )

    def timed_train(train_data, epoch_idx, *a, **k):
        t = time.perf_counter()
        loss = orig_train(train_data, epoch_idx, *a, **k)
        total = sum(loss) if isinstance(loss, tuple) else loss
        log.append({"epoch": int(epoch_idx), "train_s": time.perf_counter() - t,
                    "train_loss": float(total)})  # fmt: skip
        return loss

    def timed_valid(valid_data, *a, **k):
        t = time.perf_counter()
        score, result = orig_valid(valid_data, *a, **k)
        log[-1]["valid_s"] = time.perf_counter() - t
        log[-1]["valid_ndcg@10"] = float(score)
        log[-1]["valid"] = {k2: float(v) for k2, v in result.items()}
        return score, result

    def recorded_save(epoch, *a, **k):
        if epoch >= 0:
            saved_epochs.append(int(epoch))  # RecBole saves exactly when valid improves (>=)
        return orig_save(epoch, *a, **k)

    trainer._train_epoch, trainer._valid_epoch = timed_train, timed_valid
    trainer._save_checkpoint = recorded_save

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=True)
    t0 = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    test_s = time.perf_counter() - t0

    best_epoch = saved_epochs[-1] if saved_epochs else log[-1]["epoch"]
    upto = [e for e in log if e["epoch"] <= best_epoch]
    best = {
        "epoch": best_epoch,
        "epochs_trained_to_reach_it": best_epoch + 1,
        "valid_ndcg@10": next(e["valid_ndcg@10"] for e in log if e["epoch"] == best_epoch),
        "train_s_cum": round(sum(e["train_s"] for e in upto), 3),
        "valid_s_cum": round(sum(e.get("valid_s", 0.0) for e in upto), 3),
        "selection": "RecBole's own: last epoch whose valid NDCG@10 >= the best so far",
    }
    for e in log:
        e["train_s"] = round(e["train_s"], 3)
        e["valid_s"] = round(e.get("valid_s", float("nan")), 3)

    model_keys = sorted(_model_yaml_keys(args.model))
    hyper = {k: _jsonable(config[k]) for k in model_keys if k in config.final_config_dict}
    for k in ("train_batch_size", "learner", "learning_rate", "weight_decay", "clip_grad_norm",
              "MAX_ITEM_LIST_LENGTH", "seed", "eval_batch_size", "shuffle", "reproducibility"):  # fmt: skip
        hyper[k] = _jsonable(config[k])

    result = {
        "library": "RecBole",
        "recbole_version": recbole.__version__,
        "torch_version": torch.__version__,
        "model": args.model,
        "epochs": args.epochs,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "n_parameters": int(n_params),
        "hyperparameters": hyper,
        "hyperparameters_source": (
            "RecBole 1.2.1 defaults (properties/overall.yaml, properties/dataset/sample.yaml, "
            f"properties/model/{args.model}.yaml); overridden only by 'extra'"
        ),
        "extra": extra,
        "input": json.loads(args.input_info),
        "protocol": {
            "split": "leave-one-out per user: last event test, second-to-last valid (RecBole "
            "LS valid_and_test, order TO, group_by user)",
            "ranking": "full: all items ranked, no sampled metrics",
            "history_masking": HISTORY_MASKING,
            "ordering": ORDERING,
            "input_sequence": "the last MAX_ITEM_LIST_LENGTH (50) events before the target",
            "filtering": "none (no k-core, no duplicate removal, intervals [0,inf))",
            "valid_metric": "NDCG@10",
            "ties": "RecBole ranks with torch.topk (ties in an arbitrary order)",
        },
        "checks": checks,
        "epochs_log": log,
        "best": best,
        "test": {k: float(v) for k, v in test_result.items()},
        "timing": {
            "data_prep_s": round(data_s, 3),
            "train_s_total": round(sum(e["train_s"] for e in log), 3),
            "valid_s_total": round(sum(e["valid_s"] for e in log), 3),
            "test_eval_s": round(test_s, 3),
            "wall_s": round(time.perf_counter() - t_start, 3),
            "note": "train_s: Trainer._train_epoch wrapped; valid_s: Trainer._valid_epoch "
            "wrapped; checkpoint saving is in neither",
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "config": {k: _jsonable(v) for k, v in sorted(config.final_config_dict.items())},
    }
    _write_json(Path(args.out), result)
    return 0


def _model_yaml_keys(model: str) -> set[str]:
    import recbole

    f = Path(recbole.__file__).parent / "properties" / "model" / f"{model}.yaml"
    keys = set()
    for line in f.read_text().splitlines():
        if line and not line.startswith((" ", "#")) and ":" in line:
            keys.add(line.split(":", 1)[0].strip())
    return keys


def _checks(args, dataset, train_data, valid_data, test_data, data_path: Path) -> dict[str, Any]:
    """Nothing dropped or remapped away, one target per user, our order, no history masking."""
    import inspect

    from recbole.trainer import Trainer

    expected: dict[str, list[str]] = json.loads((data_path / "expected.json").read_text())
    uid, iid = dataset.uid_field, dataset.iid_field
    list_field = iid + dataset.config["LIST_SUFFIX"]
    len_field = dataset.config["ITEM_LIST_LENGTH_FIELD"]
    max_len = dataset.config["MAX_ITEM_LIST_LENGTH"]

    def rows(loader):
        feat = loader._dataset.inter_feat
        users = dataset.id2token(uid, feat[uid].numpy())
        targets = dataset.id2token(iid, feat[iid].numpy())
        return feat, list(users), list(targets)

    test_feat, test_users, test_targets = rows(test_data)
    _, valid_users, valid_targets = rows(valid_data)
    bad_test = [u for u, t in zip(test_users, test_targets, strict=True) if expected[u][-1] != t]
    bad_valid = [u for u, t in zip(valid_users, valid_targets, strict=True) if expected[u][-2] != t]
    bad_hist = []
    hist = test_feat[list_field].numpy()
    lens = test_feat[len_field].numpy()
    for r, u in enumerate(test_users):
        got = list(dataset.id2token(iid, hist[r, : lens[r]]))
        if got != expected[u][:-1][-max_len:]:
            bad_hist.append(u)
    n_users = len(expected)
    n_items = len({i for seq in expected.values() for i in seq})
    n_train_expected = sum(max(len(s) - 3, 0) for s in expected.values())
    src = inspect.getsource(Trainer._full_sort_batch_eval)
    from recbole.data.dataloader import FullSortEvalDataLoader

    seq_history_none = "None, positive_u, positive_i" in inspect.getsource(
        FullSortEvalDataLoader.collate_fn
    )
    c = {
        "users_expected": n_users,
        "users_in_recbole": int(dataset.user_num - 1),
        "items_expected": n_items,
        "items_in_recbole": int(dataset.item_num - 1),
        "padding_item_id_0": str(dataset.id2token(iid, 0)),
        "test_rows": len(test_users),
        "test_users_unique": len(set(test_users)),
        "valid_rows": len(valid_users),
        "train_rows": len(train_data._dataset),
        "train_rows_expected": n_train_expected,
        "test_targets_mismatch": len(bad_test),
        "valid_targets_mismatch": len(bad_valid),
        "test_histories_mismatch": len(bad_hist),
        "eval_loader_history_index_is_none": seq_history_none,
        "eval_masks_padding_column_only": "scores[:, 0] = -np.inf" in src,
    }
    c["all_ok"] = bool(
        c["users_in_recbole"] == n_users
        and c["items_in_recbole"] == n_items
        and c["test_rows"] == c["test_users_unique"] == c["valid_rows"] == n_users
        and c["train_rows"] == n_train_expected
        and not bad_test
        and not bad_valid
        and not bad_hist
        and seq_history_none
    )
    return c


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


# ------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", action="store_true", help="internal: run inside the venv")
    p.add_argument("--model", choices=MODELS, required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True, help="result JSON (written atomically)")
    p.add_argument("--extra", default="{}", help="JSON dict of RecBole config overrides")
    p.add_argument("--dataset", default="ml-100k", help="seqrec dataset name (caller)")
    p.add_argument("--data-dir", default=None, help="seqrec data root (else SEQREC_DATA)")
    p.add_argument("--venv", default=str(VENV_DIR))
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--data-path", help="internal (worker): folder with the atomic file")
    p.add_argument("--input-info", default="{}", help="internal (worker)")
    args = p.parse_args(argv)
    return _worker_main(args) if args.worker else _caller_main(args)


if __name__ == "__main__":
    sys.exit(main())
