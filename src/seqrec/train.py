"""Training: one config and one :class:`Trainer` that drives any model's training strategy.

The Trainer owns what every trained model shares: epochs, validation after each epoch,
early stopping on a validation metric with the best state kept, a progress bar, the
divergence guard, randomness scoped by the seed (a NumPy generator handed to the strategy;
torch's global RNG forked, seeded and restored), and **checkpoint/resume**: after every
epoch a checkpoint (model, strategy/optimiser state, RNG states, epoch, best-so-far,
history) is written atomically, and a later ``fit(..., resume=True)`` continues from it to
exactly the result of an uninterrupted run.

How a model trains on a batch (session-parallel steps, padded sequences, ...) is the
model's :class:`~seqrec.models.base.TrainingStrategy`; no model is named here.
The loop is written so torch DDP could wrap it later (the data a strategy sees could be
sharded by rank, rank 0 would write checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, model_validator
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from seqrec._config import ConfigModel
from seqrec._io import fsync_dir, replace_dir
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ArtifactError, ConfigError, DivergenceError, SeqrecError
from seqrec.models.base import TrainingStrategy, load_model_state, model_device, model_state

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"


class TrainConfig(ConfigModel):
    """How to train (the reference implementation's names in brackets).

    ``optimizer``, ``learning_rate`` and ``batch_size`` left unset (``None``) take the
    model's defaults (its spec's ``train_defaults``, see ``seqrec models NAME``).

    Parameters
    ----------
    epochs
        Passes over the training data [n_epochs].
    batch_size
        Sequences per mini-batch (session-parallel models: sessions side by side) [batch_size].
    optimizer
        ``"adagrad"``: Adagrad with momentum, row-sparse on item tables;
        ``"adam"``; ``"adamw"`` (decoupled weight decay). A model supports some of them:
        any other is an error naming the model.
    learning_rate, momentum
        [learning_rate], [momentum] (momentum only for adagrad: an error elsewhere).
    weight_decay
        L2 penalty (adam) / decoupled decay (adamw); not supported by adagrad (an error).
    patience
        Stop when the validation metric has not improved for this many epochs (needs a
        validation set); 0 disables early stopping. The best epoch's weights are kept.
    valid_metric
        Metric watched on validation, e.g. ``"recall@20"``.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    epochs: int = Field(10, ge=0)
    batch_size: int | None = Field(None, ge=1)
    optimizer: Literal["adagrad", "adam", "adamw"] | None = None
    learning_rate: float | None = Field(None, gt=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(0, ge=0)
    valid_metric: str = "recall@20"
    eval_batch_size: int = Field(512, ge=1)
    fused: bool = True
    """Train with the model's hand-written fast loop where it has one and it applies (same
    maths, a few times fewer kernels; see the model's page under docs/models/).
    ``False``: plain autograd."""
    grad_clip: float | None = Field(None, gt=0.0)
    """Clip the gradient norm to this (models whose strategy supports it; None: model default)."""
    warmup_steps: int = Field(0, ge=0)
    """Linear learning-rate warm-up over this many steps (models whose strategy supports it)."""
    device: str = "auto"
    progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.optimizer == "adagrad" and self.weight_decay > 0:
            raise ValueError(
                "weight_decay is not supported by optimizer 'adagrad'; use 'adam'/'adamw' or set 0"
            )
        if self.optimizer in ("adam", "adamw") and self.momentum > 0:
            raise ValueError(
                f"momentum is not supported by optimizer {self.optimizer!r} (Adam has betas); "
                "use 'adagrad' or set momentum = 0"
            )
        return self

    def resolved(self, defaults: Mapping[str, Any], model: str = "") -> TrainConfig:
        """This config with unset fields filled from a model's ``defaults``."""
        update = {k: v for k, v in defaults.items() if getattr(self, k, None) is None}
        unknown = set(defaults) - set(type(self).model_fields)
        if unknown:  # pragma: no cover - a programming error in a spec
            raise ConfigError(f"model {model!r} declares unknown train defaults {sorted(unknown)}")
        out = TrainConfig.model_validate({**self.model_dump(), **update})
        missing = [
            k for k in ("batch_size", "optimizer", "learning_rate") if getattr(out, k) is None
        ]
        if missing:
            raise ConfigError(f"model {model!r} needs [train] {', '.join(missing)} to be set")
        return out


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise SeqrecError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SeqrecError(
            f"device {device!r} asked for but CUDA is not available; use device='cpu'"
        )
    return dev


@dataclass
class EpochLog:
    epoch: int
    loss: float
    events: int
    seconds: float
    valid: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.nan


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush float denormals to zero on the CPU while training, then restore the default.

    Softmax probabilities of hopeless negatives and long-decayed momentum underflow into
    denormal floats, which x86 CPUs process up to 100x slower: an epoch can go from 4 s to
    60 s. Values below 1e-38 do not change any update meaningfully.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


# ------------------------------------------------------------------ state files
def split_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """A nested state (dicts, lists, tensors, arrays, scalars) as JSON with tensors moved
    into ``tensors`` under dotted keys (``{"__tensor__": key}`` markers). Dicts with
    non-string keys (torch optimiser state) keep their keys (``{"__items__": [[k, v]]}``)."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, np.ndarray):
        tensors[prefix] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": prefix}
    if isinstance(obj, Mapping):
        if not all(isinstance(k, str) for k in obj):  # e.g. torch optimiser state: int keys
            return {
                "__items__": [
                    [k, split_state(v, tensors, f"{prefix}.{k}" if prefix else str(k))]
                    for k, v in obj.items()
                ]
            }
        return {
            str(k): split_state(v, tensors, f"{prefix}.{k}" if prefix else str(k))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [split_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def join_state(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_state`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__ndarray__"}:
            return tensors[obj["__ndarray__"]].numpy().copy()
        if set(obj) == {"__items__"}:
            return {k: join_state(v, tensors) for k, v in obj["__items__"]}
        return {k: join_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_state(v, tensors) for v in obj]
    return obj


def write_state_dir(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` as ``tensors.safetensors`` + ``state.json`` into ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tensors: dict[str, torch.Tensor] = {}
        meta = split_state(dict(state), tensors)
        save_file(tensors, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta))
        fsync_dir(tmp)
        replace_dir(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_state_dir(path: Path) -> dict[str, Any]:
    """Read what :func:`write_state_dir` wrote (ArtifactError if damaged)."""
    try:
        tensors = load_file(str(path / "tensors.safetensors"))
        meta = json.loads((path / "state.json").read_text())
        return join_state(meta, tensors)
    except (OSError, ValueError, KeyError, SafetensorError) as e:
        raise ArtifactError(
            f"checkpoint {path} is unreadable ({e}); delete it to start over"
        ) from e


# ------------------------------------------------------------------ trainer
def _rng_state(devices: list[torch.device]) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    for d in devices:
        state[f"cuda:{d.index or 0}"] = torch.cuda.get_rng_state(d)
    return state


def _set_rng_state(state: Mapping[str, Any], devices: list[torch.device]) -> None:
    torch.set_rng_state(state["cpu"])
    for d in devices:
        torch.cuda.set_rng_state(state[f"cuda:{d.index or 0}"], d)


class Trainer:
    """Drives a :class:`~seqrec.models.base.TrainingStrategy` for ``config.epochs`` epochs.

    Parameters
    ----------
    config
        The resolved :class:`TrainConfig`.
    seed
        Seeds the strategy's NumPy generator and torch's (forked) global RNG.
    validate
        Called after each epoch with the model in eval mode; returns metrics (the
        ``config.valid_metric`` one drives early stopping).
    checkpoint_dir
        Where to write ``checkpoint/`` after each epoch (None: no checkpoints).
    fingerprint
        A JSON-able description of what is trained (the resolved config); a checkpoint
        made for another fingerprint is refused on resume, with the differing keys.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        seed: int | None = None,
        validate: Callable[[Any], dict[str, float]] | None = None,
        checkpoint_dir: str | Path | None = None,
        fingerprint: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.seed = seed
        self.validate = validate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.fingerprint = dict(fingerprint or {})

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_DIR

    def fit(
        self,
        model: Any,
        strategy: TrainingStrategy,
        data: SequenceData,
        *,
        resume: bool = False,
        on_epoch: Callable[[EpochLog], None] | None = None,
    ) -> list[EpochLog]:
        """Train ``model`` in place; returns one :class:`EpochLog` per epoch (resumed runs
        include the epochs before the interruption).

        ``on_epoch`` is called with the :class:`EpochLog` of every epoch (loss and
        validation metrics) once its checkpoint is written; a resumed fit first calls it
        with the epochs restored from the checkpoint, in order. An exception it raises
        stops training there (an Optuna pruner does so); the checkpoint of that epoch stays.
        """
        cfg = self.config
        device = model_device(model)
        seeds = np.random.SeedSequence(self.seed)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(int(seeds.generate_state(1)[0]))
        rng = np.random.default_rng(seeds.spawn(1)[0])
        strategy.setup(model, data, rng=rng, device=device)
        fork_devices = [device] if device.type == "cuda" else []
        history: list[EpochLog] = []
        best, best_state, bad_epochs, start = -math.inf, None, 0, 1
        best_meta: dict[str, Any] = {}
        with torch.random.fork_rng(devices=fork_devices), flush_denormals():
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
            ckpt = self.checkpoint_path
            if resume and ckpt is not None and (ckpt / "state.json").exists():
                state = self._load(ckpt)
                load_model_state(model, state["model"], state.get("model_meta", {}))
                strategy.load_state_dict(state["strategy"])
                rng.bit_generator.state = state["numpy_rng"]
                _set_rng_state(state["torch_rng"], fork_devices)
                history = [EpochLog(**h) for h in state["history"]]
                best = state["best"] if state["best"] is not None else -math.inf
                best_state = state.get("best_state")
                best_meta = state.get("best_meta") or {}
                bad_epochs, start = state["bad_epochs"], state["epoch"] + 1
                logger.info("resumed from %s after epoch %d", ckpt, state["epoch"])
                if state.get("stopped"):
                    start = cfg.epochs + 1  # early stopping had ended the run
                for h in history if on_epoch is not None else ():
                    on_epoch(h)
            for epoch in range(start, cfg.epochs + 1):
                if hasattr(model, "train"):
                    model.train()
                t0 = time.perf_counter()
                units = strategy.epoch_units()
                bar = tqdm(
                    total=units,
                    desc=f"epoch {epoch}",
                    unit=getattr(strategy, "units", "it"),
                    disable=not cfg.progress,
                    leave=False,
                    mininterval=1.0,
                )
                try:
                    loss_sum, n = strategy.run_epoch(bar.update if cfg.progress else None)
                except DivergenceError as e:
                    raise DivergenceError(f"epoch {epoch}: {e}") from None
                finally:
                    bar.close()
                strategy.finish()
                dt = time.perf_counter() - t0
                loss_avg = loss_sum / max(n, 1)
                if not math.isfinite(loss_avg):
                    raise DivergenceError(
                        f"training diverged (loss {loss_avg}) in epoch {epoch}; lower "
                        "learning_rate, add grad_clip/warmup_steps, or check the data"
                    )
                log = EpochLog(epoch, loss_avg, n, dt)
                if self.validate is not None:
                    if hasattr(model, "eval"):
                        model.eval()
                    log.valid = self.validate(model)
                history.append(log)
                logger.info(
                    "epoch %d loss %.4f %.1fs %.0f %s/s %s",
                    epoch,
                    loss_avg,
                    dt,
                    log.events_per_second,
                    getattr(strategy, "units", "it"),
                    " ".join(f"{k}={v:.4f}" for k, v in log.valid.items()),
                )
                stop = False
                if self.validate is not None and cfg.patience > 0:
                    score = log.valid.get(cfg.valid_metric, -math.inf)
                    if score > best:
                        best, bad_epochs = score, 0
                        tensors, best_meta = model_state(model)
                        best_state = {k: v.clone() for k, v in tensors.items()}
                    else:
                        bad_epochs += 1
                        stop = bad_epochs >= cfg.patience
                if ckpt is not None:
                    self._save(
                        ckpt,
                        model,
                        strategy,
                        rng,
                        fork_devices,
                        epoch,
                        best,
                        best_state,
                        best_meta,
                        bad_epochs,
                        history,
                        stop,
                    )
                if on_epoch is not None:
                    on_epoch(log)
                if stop:
                    logger.info(
                        "early stop after epoch %d (best %s %.4f)", epoch, cfg.valid_metric, best
                    )
                    break
        if best_state is not None:
            load_model_state(model, best_state, best_meta)
        if hasattr(model, "eval"):
            model.eval()
        return history

    # ------------------------------------------------------------ checkpoints
    def _save(
        self,
        path: Path,
        model: Any,
        strategy: TrainingStrategy,
        rng: np.random.Generator,
        devices: list[torch.device],
        epoch: int,
        best: float,
        best_state: dict[str, torch.Tensor] | None,
        best_meta: dict[str, Any],
        bad_epochs: int,
        history: list[EpochLog],
        stopped: bool,
    ) -> None:
        tensors, meta = model_state(model)
        state = {
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "stopped": stopped,
            "model": tensors,
            "model_meta": meta,
            "strategy": strategy.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": _rng_state(devices),
            "best": best if math.isfinite(best) else None,
            "best_state": best_state,
            "best_meta": best_meta,
            "bad_epochs": bad_epochs,
            "history": [asdict(h) for h in history],
        }
        write_state_dir(path, state)

    def _load(self, path: Path) -> dict[str, Any]:
        state = read_state_dir(path)
        saved = state.get("fingerprint", {})
        if self.fingerprint and saved != json.loads(json.dumps(self.fingerprint)):
            diff = _diff_keys(saved, json.loads(json.dumps(self.fingerprint)))
            raise ConfigError(
                f"cannot resume from {path}: the config changed since the checkpoint "
                f"(differing keys: {', '.join(diff)}); run without resume to start over"
            )
        return state


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        return out
    return [] if a == b else [prefix or "(root)"]
