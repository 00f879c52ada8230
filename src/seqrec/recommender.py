"""The Recommender facade: fit / recommend / evaluate / save / load.

This is what the CLI and the HTTP server use. External ids exist only here (and in the
readers); the module sees dense indices. A saved model is a directory of data files:
``config.json``, ``model.safetensors``, ``vocab.json``, ``metadata.json`` — loading never
executes code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import polars as pl
import torch
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

from seqrec._io import replace_dir
from seqrec.columns import Columns
from seqrec.data.sequences import SequenceData
from seqrec.data.vocab import Vocabulary
from seqrec.evaluate import EvalReport, Ties, evaluate, module_device
from seqrec.exceptions import ArtifactError, ConfigError, DataError, NotFittedError
from seqrec.losses import ObjectiveConfig
from seqrec.models import MODELS, GRU4Rec, GRU4RecConfig, ModelConfig, Popularity
from seqrec.train import EpochLog, TrainConfig, fit_session_parallel, resolve_device

logger = logging.getLogger(__name__)

ARTIFACT_VERSION = 1
_MODEL_ADAPTER: TypeAdapter[Any] = TypeAdapter(ModelConfig)


class RecommenderConfig(BaseModel):
    """Everything needed to rebuild a Recommender (saved as ``config.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: ModelConfig = Field(default_factory=GRU4RecConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seed: int | None = 0


def _to_sequences(
    data: pl.DataFrame | SequenceData, vocab: Vocabulary
) -> tuple[SequenceData, np.ndarray]:
    """Sequences of a frame (unknown items dropped) and the bool mask of its unknown rows."""
    if isinstance(data, SequenceData):
        return data, np.zeros(0, dtype=bool)
    if not isinstance(data, pl.DataFrame):
        raise DataError(f"expected a polars DataFrame or SequenceData, got {type(data).__name__}")
    if data.height == 0:
        raise DataError("the interaction log is empty")
    unknown = (
        vocab.lookup(data.get_column(Columns.item).to_numpy()) == 0
        if Columns.item in data.columns
        else np.zeros(data.height, dtype=bool)
    )
    return SequenceData.from_frame(data, vocab, unknown="drop"), unknown


def fingerprint(df: pl.DataFrame) -> str:
    """A short content hash of an event log (for run metadata)."""
    h = df.select(pl.all().hash().sum()).row(0) if df.height else ()
    return hashlib.sha256(repr((df.shape, tuple(df.columns), h)).encode()).hexdigest()[:16]


class Recommender:
    """Sequential recommender with a scikit-learn-like life cycle.

    Parameters
    ----------
    model
        A model config (``GRU4RecConfig``, ``PopularityConfig``).
    objective, train
        Loss/negatives and training settings (ignored by non-neural models).
    seed
        Seeds sampling, dropout and initialisation (global RNGs are never touched).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``; overrides ``train.device``.

    Examples
    --------
    >>> from seqrec.data.synthetic import synthetic_sessions
    >>> df = synthetic_sessions(n_sessions=200, n_items=30, seed=0)
    >>> rec = Recommender(GRU4RecConfig(layers=[16]), train=TrainConfig(epochs=1, progress=False)).fit(df)
    >>> rec.recommend(df["item_id"][:3].to_list(), k=5).height
    5
    """

    def __init__(
        self,
        model: Any = None,
        objective: ObjectiveConfig | None = None,
        train: TrainConfig | None = None,
        *,
        seed: int | None = 0,
        device: str | None = None,
    ) -> None:
        self.model = model if model is not None else GRU4RecConfig()
        self.objective = objective if objective is not None else ObjectiveConfig()
        self.train = train if train is not None else TrainConfig()
        self.seed = seed
        self.device = device

    # ---------------------------------------------------------------- config
    @property
    def config(self) -> RecommenderConfig:
        return RecommenderConfig(
            model=self.model, objective=self.objective, train=self.train, seed=self.seed
        )

    @classmethod
    def from_config(
        cls, config: RecommenderConfig | dict[str, Any], *, device: str | None = None
    ) -> Recommender:
        if isinstance(config, dict):
            try:
                config = RecommenderConfig.model_validate(config)
            except ValidationError as e:
                raise ConfigError(f"invalid recommender config:\n{e}") from e
        return cls(config.model, config.objective, config.train, seed=config.seed, device=device)

    def _device(self) -> torch.device:
        return resolve_device(self.device or self.train.device)

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        train: pl.DataFrame | SequenceData,
        valid: pl.DataFrame | SequenceData | None = None,
        *,
        vocab: Vocabulary | None = None,
    ) -> Self:
        """Learn from ``train`` (a canonical event frame, or SequenceData with ``vocab``).

        The vocabulary is built from the training items. With ``valid`` (and
        ``train.patience``), the best epoch by ``train.valid_metric`` is kept.
        """
        if isinstance(train, SequenceData):
            if vocab is None:
                raise DataError(
                    "fit(SequenceData) needs the vocabulary it was built with: pass vocab="
                )
            self.vocab_ = vocab
        else:
            if not isinstance(train, pl.DataFrame) or train.height == 0:
                raise DataError(
                    "the training log is empty; check the file and the cleaning filters"
                )
            self.vocab_ = vocab or Vocabulary.fit(train.get_column(Columns.item))
        data, _ = _to_sequences(train, self.vocab_)
        if data.n_events == 0:
            raise DataError("no training events left after mapping items to the vocabulary")
        device = self._device()
        spec = MODELS[self.model.name]
        module: nn.Module = spec[1](self.model, self.vocab_.n_items)
        if self.seed is not None and isinstance(module, GRU4Rec):
            g = torch.Generator().manual_seed(self.seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
                module.reset_parameters()
        module = module.to(device)
        self.history_: list[EpochLog] = []
        if isinstance(module, Popularity):
            module.fit_counts(data.item_counts())
        else:
            valid_data = _to_sequences(valid, self.vocab_)[0] if valid is not None else None
            validate = None
            if valid_data is not None and len(valid_data):
                metric = self.train.valid_metric

                def validate(m: nn.Module) -> dict[str, float]:
                    return evaluate(
                        m, valid_data, metrics=[metric], batch_size=self.train.eval_batch_size
                    ).metrics

            self.history_ = fit_session_parallel(
                module, data, self.objective, self.train, seed=self.seed, validate=validate
            )
        module.eval()
        self.module_ = module
        self.fit_info_ = {
            "n_sessions": len(data),
            "n_events": data.n_events,
            "n_items": len(self.vocab_),
            "data_fingerprint": fingerprint(train) if isinstance(train, pl.DataFrame) else None,
        }
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                "this Recommender is not fitted: call fit() or Recommender.load() first"
            )

    # ------------------------------------------------------------- inference
    def _encode_sessions(
        self, sessions: Sequence[Sequence[Any]], unknown: Literal["drop", "error"]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        idx = [
            self.vocab_.encode(
                np.asarray(s) if len(s) else np.asarray([], dtype=np.int64), unknown=unknown
            )
            for s in sessions
        ]
        lengths = np.array([len(i) for i in idx], dtype=np.int64)
        T = max(1, int(lengths.max()) if len(lengths) else 1)
        items = np.zeros((len(idx), T), dtype=np.int64)
        for r, i in enumerate(idx):  # per query, at the API edge only
            if len(i):
                items[r, T - len(i) :] = i
        dev = module_device(self.module_)
        return torch.from_numpy(items).to(dev), torch.from_numpy(lengths).to(dev)

    def score_sessions(
        self, sessions: Sequence[Sequence[Any]], *, unknown: Literal["drop", "error"] = "drop"
    ) -> torch.Tensor:
        """Scores (n_sessions, n_items) for the next item of each session (external ids in)."""
        self._check_fitted()
        items, lengths = self._encode_sessions(sessions, unknown)
        with torch.no_grad():
            scores = self.module_(items, lengths).clone()
        scores[:, 0] = float("-inf")
        return scores

    def recommend_many(
        self,
        sessions: Sequence[Sequence[Any]],
        k: int = 20,
        *,
        exclude_seen: bool = False,
        unknown: Literal["drop", "error"] = "drop",
        candidates: Iterable[Any] | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``k`` (external item ids, scores) for each session, best first.

        An empty session (or one whose items are all unknown and dropped) gets the
        model's answer for an empty history (popularity-like for GRU4Rec's bias).
        """
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        scores = self.score_sessions(sessions, unknown=unknown)
        if exclude_seen:
            items, _ = self._encode_sessions(sessions, "drop")
            scores.scatter_(1, items, float("-inf"))
            scores[:, 0] = float("-inf")
        if candidates is not None:
            cand = torch.from_numpy(
                self.vocab_.encode(np.asarray(list(candidates)), unknown="drop")
            ).to(scores.device)
            allowed = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
            allowed[cand] = True
            scores = scores.masked_fill(~allowed, float("-inf"))
        k = min(k, len(self.vocab_))
        top = torch.topk(scores, k, dim=1)
        vals, idx = top.values.cpu().numpy(), top.indices.cpu().numpy()
        out = []
        for v, i in zip(vals, idx, strict=True):
            ok = np.isfinite(v)
            out.append((self.vocab_.decode(i[ok]), v[ok]))
        return out

    def recommend(self, session_items: Sequence[Any], k: int = 20, **kwargs: Any) -> pl.DataFrame:
        """Top-``k`` next items for one live session (external ids), as a frame
        ``rank, item_id, score``."""
        ids, scores = self.recommend_many([list(session_items)], k, **kwargs)[0]
        return pl.DataFrame(
            {
                "rank": np.arange(1, len(ids) + 1),
                Columns.item: ids,
                "score": scores.astype(np.float64),
            }
        )

    def evaluate(
        self,
        test: pl.DataFrame | SequenceData,
        *,
        metrics: Sequence[str] = ("recall@20", "mrr@20", "ndcg@20"),
        ties: Ties = "conservative",
        exclude_seen: bool = False,
        candidates: Literal["full"] | int = "full",
        split: str | None = None,
        progress: bool = False,
        unknown_targets: Literal["miss", "drop"] = "miss",
    ) -> EvalReport:
        """Evaluate on a held-out frame.

        Events whose item is not in the vocabulary are removed from the input sequences
        (counted in the protocol). Target events with such items can't be ranked: by default
        they count as misses (``unknown_targets="miss"``, comparable with frameworks that index
        every item); ``"drop"`` leaves them out, as GRU4Rec's evaluation does.
        """
        self._check_fitted()
        data, unknown = _to_sequences(test, self.vocab_)
        n_unknown = int(unknown.sum())
        n_unknown_targets = 0
        if n_unknown and isinstance(test, pl.DataFrame) and "is_target" in test.columns:
            is_target = test.get_column("is_target").to_numpy().astype(bool)
            n_unknown_targets = int((unknown & is_target).sum())
        return evaluate(
            self.module_,
            data,
            metrics=metrics,
            ties=ties,
            exclude_seen=exclude_seen,
            candidates=candidates,
            batch_size=self.train.eval_batch_size,
            split=split,
            progress=progress,
            n_unknown_dropped=n_unknown,
            unknown_targets=unknown_targets,
            n_unknown_targets=n_unknown_targets,
        )

    # ------------------------------------------------------------------- I/O
    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the model directory atomically (a temp dir renamed into place)."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            (tmp / "config.json").write_text(self.config.model_dump_json(indent=2))
            state = {k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}
            save_file(state, str(tmp / "model.safetensors"))
            self.vocab_.save(tmp / "vocab.json")
            meta = {
                "artifact_version": ARTIFACT_VERSION,
                "seqrec_version": _version(),
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "model": self.model.name,
                "fit": getattr(self, "fit_info_", {}),
                "history": [vars(h) for h in getattr(self, "history_", [])],
                **(metadata or {}),
            }
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=float))
            replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Recommender:
        """Load a directory written by :meth:`save`. Never executes code from it."""
        path = Path(path)
        needed = ["config.json", "model.safetensors", "vocab.json", "metadata.json"]
        if not path.is_dir():
            raise ArtifactError(f"no saved model at {path}: expected a directory with {needed}")
        missing = [f for f in needed if not (path / f).exists()]
        if missing:
            raise ArtifactError(f"{path} is not a complete seqrec model: missing {missing}")
        try:
            meta = json.loads((path / "metadata.json").read_text())
            cfg = RecommenderConfig.model_validate_json((path / "config.json").read_text())
        except (ValueError, ValidationError) as e:
            raise ArtifactError(f"{path}: unreadable config/metadata ({e})") from e
        if meta.get("artifact_version") != ARTIFACT_VERSION:
            raise ArtifactError(
                f"{path}: artifact version {meta.get('artifact_version')} is not supported (expected {ARTIFACT_VERSION})"
            )
        rec = cls.from_config(cfg, device=device)
        rec.vocab_ = Vocabulary.load(path / "vocab.json")
        module = MODELS[cfg.model.name][1](cfg.model, rec.vocab_.n_items)
        try:
            module.load_state_dict(load_file(str(path / "model.safetensors")))
        except RuntimeError as e:
            raise ArtifactError(f"{path}: weights do not match the config ({e})") from e
        rec.module_ = module.to(resolve_device(device)).eval()
        rec.fit_info_ = meta.get("fit", {})
        rec.history_ = []
        rec.metadata_ = meta
        return rec


def _version() -> str:
    from seqrec import __version__

    return __version__
