"""The Recommender facade: fit / recommend / evaluate / save / load.

This is what the CLI and the HTTP server use. External ids exist only here (and in the
readers); models see dense indices. The facade never names a model: it reads how to build,
train or fit, score and save one from its :class:`~seqrec.models.base.ModelSpec`. A saved
model is a directory of data files (:mod:`seqrec.artifact`) — loading never executes code.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import polars as pl
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    model_validator,
)

from seqrec._checks import check_int, check_queries, id_list, item_array
from seqrec._config import ConfigModel
from seqrec.artifact import load_artifact, save_artifact
from seqrec.columns import Columns
from seqrec.data.query import Query, QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.data.vocab import Vocabulary
from seqrec.evaluate import EvalReport, Ties, evaluate
from seqrec.exceptions import ArtifactError, ConfigError, DataError, NotFittedError
from seqrec.models import DEFAULT_MODEL, MODELS, ModelConfig, ModelSpec, get_spec
from seqrec.models.base import load_model_state, model_device, model_state
from seqrec.train import EpochLog, TrainConfig, Trainer, resolve_device

logger = logging.getLogger(__name__)


class RecommenderConfig(ConfigModel):
    """Everything needed to rebuild a Recommender (saved as ``config.json``).

    ``objective`` is the extra training section a model's spec may take (a loss and
    negatives config); giving one to a model that takes none is an error naming the model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: ModelConfig = Field(default_factory=lambda: MODELS[DEFAULT_MODEL].config())
    objective: Any = None
    train: TrainConfig = Field(default_factory=TrainConfig)
    seed: int | None = 0

    @model_validator(mode="after")
    def _objective(self) -> RecommenderConfig:
        spec = MODELS[self.model.name]
        if self.objective is None:
            return self
        if spec.objective is None:
            raise ValueError(
                f"model {spec.name!r} takes no [objective] section (its loss is set in [model])"
            )
        obj = self.objective
        if isinstance(obj, BaseModel) and not isinstance(obj, spec.objective):
            obj = obj.model_dump()
        if not isinstance(obj, spec.objective):
            obj = spec.objective.model_validate(obj)
        object.__setattr__(self, "objective", obj)
        return self

    @field_serializer("objective")
    def _dump_objective(self, v: Any) -> Any:
        return v.model_dump(mode="json") if isinstance(v, BaseModel) else v


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


@dataclass
class Recommendation:
    """The answer to one :class:`~seqrec.data.query.Query`: items best first."""

    query_id: Any
    items: np.ndarray
    scores: np.ndarray
    empty_history: bool
    """True when no known item was left in the history: the answer is the model's
    empty-prefix answer (see the model's docs; for most, the popular items)."""


class Recommender:
    """Sequential recommender with a scikit-learn-like life cycle, for any registered model.

    Parameters
    ----------
    model
        A model config of a model in :data:`seqrec.models.MODELS` (``seqrec models``).
    objective
        The extra training section of models whose spec takes one (``spec.objective``);
        None: the model's default.
    train
        Training settings (trained models; unset fields take the model's defaults).
    seed
        Seeds sampling, dropout and initialisation (global RNGs are never touched).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``; overrides ``train.device``.

    Examples
    --------
    >>> from seqrec.data.synthetic import synthetic_sessions
    >>> from seqrec.models import MODELS
    >>> df = synthetic_sessions(n_sessions=200, n_items=30, seed=0)
    >>> spec = next(s for s in MODELS.values() if not s.trained)  # any model: seqrec models
    >>> cfg = spec.config()
    >>> rec = Recommender(cfg).fit(df)
    >>> rec.recommend(df["item_id"][:3].to_list(), k=5).height
    5
    """

    def __init__(
        self,
        model: Any = None,
        objective: Any = None,
        train: TrainConfig | None = None,
        *,
        seed: int | None = 0,
        device: str | None = None,
    ) -> None:
        self.model = model if model is not None else MODELS[DEFAULT_MODEL].config()
        self.objective = objective
        self.train = train if train is not None else TrainConfig()
        self.seed = seed
        self.device = device

    # ---------------------------------------------------------------- config
    @property
    def config(self) -> RecommenderConfig:
        try:
            return RecommenderConfig(
                model=self.model, objective=self.objective, train=self.train, seed=self.seed
            )
        except ValidationError as e:
            raise ConfigError(_first_error(e)) from None

    @property
    def spec(self) -> ModelSpec:
        return get_spec(getattr(self.model, "name", "?"))

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

    def _build(self, spec: ModelSpec, n_items: int) -> Any:
        """An untrained model; its initialisation seeded by ``seed`` (global RNG restored)."""
        if self.seed is None:
            return spec.build(self.model, n_items)
        g = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            init_seed = int(torch.randint(0, 2**62, (1,), generator=g))
            torch.manual_seed(init_seed)
            model = spec.build(self.model, n_items)
            if hasattr(model, "reset_parameters"):
                torch.manual_seed(init_seed)
                model.reset_parameters()
        return model

    # ------------------------------------------------------------------- fit
    def fit(
        self,
        train: pl.DataFrame | SequenceData,
        valid: pl.DataFrame | SequenceData | None = None,
        *,
        vocab: Vocabulary | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        on_epoch: Callable[[EpochLog], None] | None = None,
    ) -> Self:
        """Learn from ``train`` (a canonical event frame, or SequenceData with ``vocab``).

        The vocabulary is built from the training items. With ``valid`` (and
        ``train.patience``), the best epoch by ``train.valid_metric`` is kept. With
        ``checkpoint_dir``, trained models write a checkpoint there after every epoch;
        ``resume=True`` continues from it (to exactly the uninterrupted result).
        ``on_epoch`` is called after every training epoch (see
        :meth:`seqrec.train.Trainer.fit`); models without epochs never call it.
        """
        config = self.config  # validates model/objective together
        spec = self.spec
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
        model = self._build(spec, self.vocab_.n_items)
        model = model.to(device)
        self.history_: list[EpochLog] = []
        if spec.strategy is not None:
            train_cfg = self.train.resolved(spec.train_defaults, spec.name)
            self.train = train_cfg
            strategy = spec.strategy(self.model, self.objective, train_cfg)
            valid_data = _to_sequences(valid, self.vocab_)[0] if valid is not None else None
            validate = None
            if valid_data is not None and len(valid_data):
                metric = train_cfg.valid_metric

                def validate(m: Any) -> dict[str, float]:
                    return evaluate(
                        m, valid_data, metrics=[metric], batch_size=train_cfg.eval_batch_size
                    ).metrics

            trainer = Trainer(
                train_cfg,
                seed=self.seed,
                validate=validate,
                checkpoint_dir=checkpoint_dir,
                fingerprint=_training_fingerprint(config),
            )
            self.history_ = trainer.fit(model, strategy, data, resume=resume, on_epoch=on_epoch)
            info = getattr(strategy, "info", None)  # optional: facts for the report
            training_info = info() if callable(info) else {}
        else:
            training_info = {}
            model.fit(data)
        model.eval()
        self.model_ = model
        self.fit_info_ = {
            "n_sessions": len(data),
            "n_events": data.n_events,
            "n_items": len(self.vocab_),
            "data_fingerprint": fingerprint(train) if isinstance(train, pl.DataFrame) else None,
        }
        if training_info:
            self.fit_info_["training"] = training_info
        return self

    @property
    def module_(self) -> Any:
        """The fitted model (alias of ``model_``)."""
        return self.model_

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this Recommender is not fitted: call fit() or Recommender.load() first"
            )

    # ------------------------------------------------------------- inference
    def _encode(
        self, ids: Sequence[Any], unknown: Literal["drop", "error"], name: str = "items"
    ) -> np.ndarray:
        arr = item_array(ids, name, string_ids=self.vocab_.ids.dtype.kind == "U")
        return self.vocab_.encode(arr, unknown=unknown)

    def query_batch(
        self,
        queries: Sequence[Query],
        *,
        unknown: Literal["drop", "error"] = "drop",
        exclude_seen: bool = False,
    ) -> QueryBatch:
        """External-id queries -> a :class:`QueryBatch` on the model's device (unknown
        history items dropped, or an error with ``unknown="error"``; unknown exclude or
        candidate items are ignored)."""
        self._check_fitted()
        queries = check_queries(queries, unknown=unknown, exclude_seen=exclude_seen)
        if self.spec.task == "next-basket":
            return self._basket_batch(queries, unknown=unknown, exclude_seen=exclude_seen)
        hist = [self._encode(q.items, unknown) for q in queries]
        return QueryBatch.from_lists(
            hist, self.vocab_.n_items, exclude_seen=exclude_seen, **self._query_extras(queries)
        )

    def _query_extras(self, queries: Sequence[Query]) -> dict[str, Any]:
        """What every query batch takes besides the histories: the device, each query's
        exclude and candidate items (unknown ones ignored) and user ids, None where unused."""
        excl = [self._encode(q.exclude, "drop", "exclude") for q in queries]
        cands = [
            None if q.candidates is None else self._encode(q.candidates, "drop", "candidates")
            for q in queries
        ]
        users = np.asarray([q.user_id for q in queries], dtype=object)
        return {
            "device": model_device(self.model_),
            "exclude": excl if any(len(e) for e in excl) else None,
            "candidates": cands if any(c is not None for c in cands) else None,
            "user_ids": users if any(u is not None for u in users) else None,
        }

    def _basket_batch(
        self, queries: Sequence[Query], *, unknown: Literal["drop", "error"], exclude_seen: bool
    ) -> QueryBatch:
        """Next-basket queries: each query's ``baskets`` (oldest first)."""
        hist = []
        contexts: list[Any] = []
        for j, q in enumerate(queries):
            if q.baskets is None:
                if len(q.items):
                    raise DataError(
                        f"query {j}: a next-basket model needs the user's baskets "
                        "(Query(baskets=[[...], [...]])), not a flat list of items"
                    )
                baskets: list[Any] = []
            else:
                baskets = id_list(q.baskets, f"query {j} baskets")
            hist.append([self._encode(id_list(b, f"query {j} basket"), unknown) for b in baskets])
            contexts.append(None if q.context is None else np.asarray(q.context, dtype=np.float32))
        n_ctx = len(getattr(self.model_, "context_names", ()) or ())
        context = None
        if n_ctx:
            for j, (c, h) in enumerate(zip(contexts, hist, strict=True)):
                if c is None:
                    raise DataError(
                        f"query {j}: this model uses order context "
                        f"{list(self.model_.context_names)}: give one row per basket (context=)"
                    )
                if c.ndim != 2 or c.shape != (len(h), n_ctx):
                    raise DataError(
                        f"query {j}: context must be {len(h)} rows x {n_ctx} values "
                        f"({list(self.model_.context_names)}), got shape {c.shape}"
                    )
            context = contexts
        return QueryBatch.from_baskets(
            hist,
            self.vocab_.n_items,
            exclude_seen=exclude_seen,
            context=context,
            **self._query_extras(queries),
        )

    def score_batch(self, batch: QueryBatch) -> torch.Tensor:
        """Masked scores (B, n_items) of a batch: padding, exclusions and candidates -inf."""
        self._check_fitted()
        with torch.no_grad():
            scores = self.model_.score(batch).to(batch.device).float().clone()
        return batch.mask(scores)

    def score_sessions(
        self, sessions: Sequence[Sequence[Any]], *, unknown: Literal["drop", "error"] = "drop"
    ) -> torch.Tensor:
        """Scores (n_sessions, n_items) for the next item of each session (external ids in)."""
        return self.score_batch(
            self.query_batch([Query(items=s) for s in sessions], unknown=unknown)
        )

    def recommend_queries(
        self,
        queries: Sequence[Query],
        k: int = 20,
        *,
        exclude_seen: bool = False,
        unknown: Literal["drop", "error"] = "drop",
    ) -> list[Recommendation]:
        """Top-``k`` items for each query, best first (the one code path of ``recommend``,
        batch files and HTTP requests)."""
        k = check_int(k, "k", minimum=1)
        batch = self.query_batch(queries, unknown=unknown, exclude_seen=exclude_seen)
        scores = self.score_batch(batch)
        k = min(k, len(self.vocab_))
        top = torch.topk(scores, k, dim=1)
        vals, idx = top.values.cpu().numpy(), top.indices.cpu().numpy()
        empty = (batch.lengths == 0).cpu().numpy()
        out = []
        for q, v, i, e in zip(queries, vals, idx, empty, strict=True):
            ok = np.isfinite(v)
            out.append(Recommendation(q.query_id, self.vocab_.decode(i[ok]), v[ok], bool(e)))
        return out

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
        model's answer for an empty history (see :attr:`Recommendation.empty_history`).
        """
        cand = None if candidates is None else id_list(candidates, "candidates", ordered=False)
        queries = [
            Query(items=id_list(s, "session"), candidates=cand)
            for s in id_list(sessions, "sessions")
        ]
        res = self.recommend_queries(queries, k, exclude_seen=exclude_seen, unknown=unknown)
        return [(r.items, r.scores) for r in res]

    def recommend(self, session_items: Sequence[Any], k: int = 20, **kwargs: Any) -> pl.DataFrame:
        """Top-``k`` next items for one live session (external ids), as a frame
        ``rank, item_id, score``. For a next-basket model, ``session_items`` is the user's
        list of baskets (oldest first) — see :meth:`recommend_basket`."""
        self._check_fitted()
        if self.spec.task == "next-basket":
            hist = id_list(session_items, "baskets")
            if any(isinstance(b, str | bytes) or not hasattr(b, "__len__") for b in hist):
                raise DataError(
                    f"{self.model.name!r} predicts next baskets: give the user's baskets as a "
                    "list of lists of item ids (oldest first), e.g. [[196, 13176], [21903]]"
                )
            return self.recommend_basket(hist, k, **kwargs)
        ids, scores = self.recommend_many([id_list(session_items, "session_items")], k, **kwargs)[0]
        return _ranked_frame(ids, scores)

    def recommend_basket(
        self,
        baskets: Sequence[Sequence[Any]],
        k: int = 20,
        *,
        context: Sequence[Sequence[float]] | None = None,
        exclude_seen: bool = False,
        unknown: Literal["drop", "error"] = "drop",
        candidates: Iterable[Any] | None = None,
    ) -> pl.DataFrame:
        """The top-``k`` items of a user's next basket, given their baskets so far (external
        ids, oldest first; ``context``: one row per basket for models that use order
        context), as a frame ``rank, item_id, score``. ``exclude_seen`` is off by default:
        repeat purchases are most of a next basket."""
        cand = None if candidates is None else id_list(candidates, "candidates", ordered=False)
        query = Query(
            baskets=[id_list(b, "basket") for b in id_list(baskets, "baskets")],
            context=context,
            candidates=cand,
        )
        rec = self.recommend_queries([query], k, exclude_seen=exclude_seen, unknown=unknown)[0]
        return _ranked_frame(rec.items, rec.scores)

    def evaluate(
        self,
        test: pl.DataFrame | SequenceData,
        *,
        metrics: Sequence[str] | None = None,
        ties: Ties = "conservative",
        exclude_seen: bool = False,
        candidates: Literal["full"] | int = "full",
        split: str | None = None,
        progress: bool = False,
        unknown_targets: Literal["miss", "drop"] = "miss",
        replay: bool | None = None,
        per_query: bool = False,
        **basket_options: Any,
    ) -> EvalReport:
        """Evaluate on a held-out frame.

        Events whose item is not in the vocabulary are removed from the input sequences
        (counted in the protocol). Target events with such items can't be ranked: by default
        they count as misses (``unknown_targets="miss"``, comparable with frameworks that index
        every item); ``"drop"`` leaves them out, as some reference evaluations do.

        Next-basket models are evaluated by :func:`seqrec.evaluate.evaluate_baskets`;
        ``metrics`` defaults to its metrics and ``basket_options`` (``threshold``,
        ``thresholds``, ``set_size``, ``restrict``, ``macro_items``) go to it. Target items
        unknown to the vocabulary count as misses (in every ``|T|``).

        ``per_query=True`` also returns each query's rank and metric values
        (``report.queries``, see :data:`seqrec.evaluate.QUERY_KEYS`).
        """

        self._check_fitted()
        data, unknown = _to_sequences(test, self.vocab_)
        if basket_options and not data.is_baskets:
            raise ConfigError(
                f"options {sorted(basket_options)} apply to next-basket evaluation only"
            )
        if data.is_baskets and unknown_targets != "miss":
            raise ConfigError(
                "next-basket evaluation counts target items unknown to the model as misses; "
                "unknown_targets='drop' is not offered"
            )
        n_unknown = int(unknown.sum())
        n_unknown_targets = 0
        if n_unknown and isinstance(test, pl.DataFrame) and "is_target" in test.columns:
            is_target = test.get_column("is_target").to_numpy().astype(bool)
            if data.is_baskets:  # target baskets left without a known item: all misses
                n_unknown_targets = (
                    test.filter(pl.Series(is_target))
                    .with_columns(pl.Series("_unk", unknown[is_target]))
                    .group_by([Columns.session, Columns.basket])
                    .agg(pl.col("_unk").all())
                    .get_column("_unk")
                    .sum()
                )
            else:
                n_unknown_targets = int((unknown & is_target).sum())
        report = evaluate(
            self.model_,
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
            replay=replay,
            basket_options=basket_options or None,
            per_query=per_query,
        )
        report.protocol["model"] = self.model.name
        return report

    # ------------------------------------------------------------------- I/O
    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the model directory atomically (see :mod:`seqrec.artifact`)."""
        self._check_fitted()
        tensors, state = model_state(self.model_)
        meta = {
            "model": self.model.name,
            "task": self.spec.task,
            "fit": getattr(self, "fit_info_", {}),
            "history": [vars(h) for h in getattr(self, "history_", [])],
            **(metadata or {}),
        }
        return save_artifact(
            path,
            config_json=self.config.model_dump_json(indent=2),
            tensors=tensors,
            state=state,
            vocab=self.vocab_,
            metadata=meta,
            seqrec_version=_version(),
        )

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Recommender:
        """Load a directory written by :meth:`save`. Never executes code from it."""
        art = load_artifact(path)
        try:
            cfg = RecommenderConfig.model_validate(art.config)
        except ValidationError as e:
            raise ArtifactError(
                f"{path}: config.json is not a valid config ({_first_error(e)})"
            ) from e
        rec = cls.from_config(cfg, device=device)
        rec.vocab_ = art.vocab
        try:
            model = rec.spec.build(cfg.model, rec.vocab_.n_items)
            load_model_state(model, art.tensors, art.state)
        except ArtifactError as e:
            raise ArtifactError(f"{path}: {e}") from e
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:
            raise ArtifactError(
                f"{path}: model.safetensors/state.json do not fit config.json and vocab.json "
                f"({type(e).__name__}: {str(e)[:200]}); save or train the model again"
            ) from None
        rec.model_ = model.to(resolve_device(device)).eval()
        rec.fit_info_ = art.metadata.get("fit", {})
        rec.history_ = []
        rec.metadata_ = art.metadata
        return rec


_NOT_RESULTS = ("progress", "eval_batch_size", "device")
"""[train] fields that do not change what is learned: a resumed run may differ in them."""


def _ranked_frame(ids: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"rank": np.arange(1, len(ids) + 1), Columns.item: ids, "score": scores.astype(np.float64)}
    )


def _training_fingerprint(config: RecommenderConfig) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the config but display/device fields."""
    d = config.model_dump(mode="json")
    for k in _NOT_RESULTS:
        d["train"].pop(k, None)
    return d


def _first_error(e: ValidationError) -> str:
    errs = e.errors()
    if not errs:
        return str(e)
    err = errs[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))


def _version() -> str:
    from seqrec import __version__

    return __version__
