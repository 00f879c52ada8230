"""Optional experiment tracking: runs also logged to MLflow.

With ``[tracking] mlflow = "<dir or URI>"`` in an experiment file (or ``seqrec run --mlflow
DIR``), :func:`~seqrec.experiment.run_one` logs each run to an MLflow tracking store as it goes:

* **params**: the flattened resolved config (``model.layers``, ``train.learning_rate``, ...;
  lists as JSON);
* **per-epoch metrics** (``step`` = epoch): ``train.loss``, ``train.seconds``,
  ``train.events_per_second`` and the validation metric watched while training,
  ``train.valid.<metric>``;
* **final metrics** per part: ``valid.<metric>``, ``test.<metric>`` (MLflow names cannot
  hold ``@``: ``recall@20`` is logged as ``recall_at_20``), ``train_seconds``;
* **tags**: ``seqrec.run`` (the run directory's name, also the MLflow run name),
  ``seqrec.run_dir``, ``seqrec.point`` (the point id), ``seqrec.seed``, ``seqrec.model``,
  ``seqrec.status`` (``new``, ``resumed``, ``failed``, ``pruned``), ``seqrec.version``;
* **artifacts**: the finished run directory (unless ``artifacts = false``).

A directory as the location gets an SQLite store ``<dir>/mlflow.db`` and the artifacts under
``<dir>/artifacts/`` (what ``mlflow-skinny`` with SQLAlchemy serves, no server needed; view it
with ``mlflow ui --backend-store-uri sqlite:///<dir>/mlflow.db`` where full MLflow is
installed). seqrec's run directories stay the source of truth: tracking writes nothing into
them and is not part of a point id or of the resolved config. A failure to log is a warning;
the run goes on. Each attempt at a run is one MLflow run (a resumed run logs the restored
epochs again, then the new ones); a run that was already finished and is not run again is
not logged again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqrec.exceptions import ConfigError, RunPruned

if TYPE_CHECKING:
    from seqrec.experiment.config import ExperimentConfig, TrackingConfig
    from seqrec.experiment.runs import RunResult
    from seqrec.train import EpochLog

logger = logging.getLogger(__name__)

MLFLOW_EXTRA = "pip install 'seqrec[mlflow]'"
"""The install command named by the error when MLflow is missing."""

STORE_FILE = "mlflow.db"
"""The SQLite store in a tracking directory."""

ARTIFACTS_DIR = "artifacts"
"""Where the artifacts of a tracking directory's experiments go."""

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def require_mlflow() -> Any:
    """Import MLflow, or raise a :class:`ConfigError` naming the extra to install."""
    try:
        import mlflow
    except ImportError as e:
        raise ConfigError(
            f"[tracking] mlflow is set but MLflow is not installed ({e}): {MLFLOW_EXTRA} "
            "(mlflow-skinny and SQLAlchemy for a local store), or remove [tracking] / --mlflow"
        ) from None
    return mlflow


def prepare_tracking(configs: Iterable[ExperimentConfig]) -> None:
    """Check that MLflow is importable (a :class:`ConfigError` if not) and create the store
    and the experiments of ``configs``' ``[tracking]`` once, before runs start (worker
    processes creating one SQLite store at the same time would race on its tables). A
    store that cannot be prepared is a warning: each run then tries, and warns, again."""
    todo = {(c.tracking, c.tracking.experiment or c.name) for c in configs if c.tracking}
    if not todo:
        return
    require_mlflow()
    for tracking, name in sorted(todo, key=lambda t: (t[0].mlflow, t[1])):
        try:
            _experiment_id(tracking, name)
        except Exception as e:  # noqa: BLE001 - tracking never stops the runs
            logger.warning(
                "MLflow store %s could not be prepared (%s: %s); the runs go on",
                tracking.mlflow,
                type(e).__name__,
                str(e).splitlines()[0] if str(e) else "",
            )


def _experiment_id(tracking: TrackingConfig, name: str) -> tuple[Any, str]:
    """``(client, experiment id)``: the MLflow experiment ``name``, created if missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri, artifacts = tracking_uri(tracking.mlflow)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return client, exp.experiment_id
    try:
        return client, client.create_experiment(name, artifact_location=artifacts)
    except MlflowException:  # created meanwhile by a parallel run
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return client, exp.experiment_id


def tracking_uri(location: str) -> tuple[str, str | None]:
    """``(tracking URI, artifact location of new experiments)`` for a ``[tracking] mlflow``
    value: a directory -> its SQLite store and ``artifacts/``; ``sqlite:///path`` -> that
    store, artifacts beside it; any other URI as it is (its server's default artifacts)."""
    if location.startswith("sqlite:///"):
        db = Path(location[len("sqlite:///") :])
        return location, (db.parent.resolve() / ARTIFACTS_DIR).as_uri()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location) and not re.match(r"^[A-Za-z]:\\", location):
        return location, None
    root = Path(location).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / STORE_FILE}", (root / ARTIFACTS_DIR).as_uri()


def metric_key(name: str) -> str:
    """An MLflow-valid metric/param name: ``@`` -> ``_at_``, other invalid characters -> ``_``."""
    return re.sub(r"[^\w.\- :/]", "_", name.replace("@", "_at_"))


def _params(cfg: ExperimentConfig) -> dict[str, str]:
    import json

    from seqrec.experiment.overrides import flatten_dict

    out: dict[str, str] = {}
    for k, v in flatten_dict(cfg.to_dict()).items():
        text = json.dumps(v) if isinstance(v, list | dict) else str(v)
        out[metric_key(k)] = text[:_MAX_PARAM_LENGTH]
    return out


class MlflowTracker:
    """Log one run to MLflow (through :class:`mlflow.MlflowClient`, no global active run, so
    runs in worker processes or threads do not mix). Every method turns an MLflow error into
    one warning and stops logging for this run."""

    def __init__(self, tracking: TrackingConfig, cfg: ExperimentConfig, out_dir: Path) -> None:
        self.tracking = tracking
        self.out_dir = Path(out_dir)
        self.run_id: str | None = None
        self.logged_epochs = 0
        self._call(self._start, cfg)

    # ------------------------------------------------------------------ guarded calls
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        if fn != self._start and self.run_id is None:
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a tracking failure never loses a run
            logger.warning(
                "MLflow tracking of %s failed (%s: %s); the run goes on, its directory is "
                "complete, nothing more is logged to MLflow for it",
                self.out_dir,
                type(e).__name__,
                str(e).splitlines()[0] if str(e) else "",
            )
            self.run_id = None

    def _start(self, cfg: ExperimentConfig) -> None:
        from seqrec import __version__
        from seqrec.experiment.search import point_id

        self.client, exp_id = _experiment_id(self.tracking, self.tracking.experiment or cfg.name)
        tags = {
            "seqrec.run": self.out_dir.name,
            "seqrec.run_dir": str(self.out_dir.resolve()),
            "seqrec.point": point_id(cfg),
            "seqrec.seed": str(cfg.seed),
            "seqrec.model": cfg.model.name,
            "seqrec.status": "running",
            "seqrec.version": __version__,
        }
        if getattr(cfg, "variant", None):
            tags["seqrec.variant"] = str(cfg.variant)
        run = self.client.create_run(exp_id, run_name=self.out_dir.name, tags=tags)
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in _params(cfg).items()]
        self.client.log_batch(self.run_id, params=params)
        logger.info(
            "logging %s to MLflow %s (run %s)", self.out_dir.name, self.tracking.mlflow, self.run_id
        )

    def _metrics(self, values: Mapping[str, float | None], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        ms = [
            Metric(metric_key(k), float(v), now, step)
            for k, v in values.items()
            if isinstance(v, int | float) and v == v  # noqa: PLR0124 - skips NaN
        ]
        if ms:
            assert self.run_id is not None
            self.client.log_batch(self.run_id, metrics=ms)

    # --------------------------------------------------------------------- the hooks
    def on_epoch(self, log: EpochLog) -> None:
        """Per-epoch metrics (the :class:`~seqrec.train.Trainer`'s ``on_epoch`` hook)."""
        values: dict[str, float | None] = {
            "train.loss": log.loss,
            "train.seconds": log.seconds,
            "train.events_per_second": log.events_per_second,
            **{f"train.valid.{k}": v for k, v in log.valid.items()},
        }
        self._call(self._metrics, values, log.epoch)
        self.logged_epochs += 1

    def finish(self, result: RunResult) -> None:
        """Final metrics per part, the status tag, the run directory as artifacts; ends
        the MLflow run as FINISHED."""
        self._call(self._finish, result)

    def _finish(self, result: RunResult) -> None:
        if self.logged_epochs == 0:  # e.g. a finished run moved into place on resume
            for h in result.metrics.get("history") or []:
                values = {"train.loss": h.get("loss"), "train.seconds": h.get("seconds")}
                values |= {f"train.valid.{k}": v for k, v in (h.get("valid") or {}).items()}
                self._metrics(values, int(h["epoch"]))
        final: dict[str, float | None] = {
            f"{part}.{m}": v for part, rep in result.reports.items() for m, v in rep.metrics.items()
        }
        final["train_seconds"] = result.metrics.get("train", {}).get("seconds")
        self._metrics(final, 0)
        assert self.run_id is not None
        self.client.set_tag(self.run_id, "seqrec.status", result.status)
        if self.tracking.artifacts and result.out_dir.is_dir():
            self.client.log_artifacts(self.run_id, str(result.out_dir))
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, exc: BaseException) -> None:
        """Tag the run ``failed`` (FAILED in MLflow) or, for a pruned run or an interrupt,
        ``pruned``/``interrupted`` (KILLED)."""
        self._call(self._fail, exc)

    def _fail(self, exc: BaseException) -> None:
        assert self.run_id is not None
        if isinstance(exc, RunPruned):
            status, state = "pruned", "KILLED"
        elif isinstance(exc, KeyboardInterrupt):
            status, state = "interrupted", "KILLED"
        else:
            status, state = "failed", "FAILED"
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.client.set_tag(self.run_id, "seqrec.error", text[:5000])
        self.client.set_tag(self.run_id, "seqrec.status", status)
        self.client.set_terminated(self.run_id, state)


def start_tracking(
    tracking: TrackingConfig | None, cfg: ExperimentConfig, out_dir: Path
) -> MlflowTracker | None:
    """A tracker for one run, or None without ``[tracking]`` (MLflow must be importable:
    check with :func:`require_mlflow` before anything runs)."""
    if tracking is None:
        return None
    require_mlflow()
    return MlflowTracker(tracking, cfg, out_dir)


__all__ = [
    "ARTIFACTS_DIR",
    "MLFLOW_EXTRA",
    "STORE_FILE",
    "MlflowTracker",
    "metric_key",
    "prepare_tracking",
    "require_mlflow",
    "start_tracking",
    "tracking_uri",
]
