"""The seam every model plugs into: :class:`ModelSpec`, :class:`Scorer`, training strategies,
per-model state.

The facade (:mod:`seqrec.recommender`), the evaluator, the trainer and the artifact code
never name a model: they read what a model is from its spec.

* A **fitted model** answers ``score(batch: QueryBatch) -> (B, n_items)`` (higher is
  better; column 0 is padding and is masked by the caller, as are exclusions and
  candidate sets, see :meth:`QueryBatch.mask`).
* A model is **trained** by a :class:`TrainingStrategy` that the :class:`~seqrec.train.Trainer`
  drives (epochs, validation, early stopping, checkpoints), or **fitted directly** by its
  own ``fit(data: SequenceData) -> self`` (non-neural models).
* A model may offer a **replay** fast path for evaluation (GRU4Rec's session-parallel
  evaluation: one step per event instead of one forward pass per prefix). The evaluator
  uses it when present; a test asserts both paths give identical ranks.
* **State** for saving: tensors (safetensors) plus small JSON. ``nn.Module`` models save
  their ``state_dict``; :class:`ArrayModel` subclasses list their learned arrays (NumPy or
  SciPy CSR matrices, stored as their CSR arrays in the same safetensors file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from pydantic import BaseModel
from torch import Tensor, nn

from seqrec.data.query import QueryBatch
from seqrec.data.sequences import SequenceData
from seqrec.exceptions import ArtifactError

if TYPE_CHECKING:  # pragma: no cover
    from seqrec.train import TrainConfig

Task = Literal["next-item", "next-basket"]


@runtime_checkable
class Scorer(Protocol):
    """Every fitted model."""

    n_items: int

    def score(self, batch: QueryBatch) -> Tensor:
        """(B, n_items) scores over dense items for each query's history."""
        ...


@runtime_checkable
class SupportsReplay(Protocol):
    """Optional evaluation fast path: replay whole sequences once, scoring at each target.

    ``replay`` yields ``(scores (b, n_items), positions (b,))`` for the target events of
    ``data`` (``positions`` index ``data.items``; every target flagged by
    ``data.target_mask()`` exactly once). The scores are those ``score`` would give the
    prefix before each target (column 0 and any masking left to the caller).
    """

    def replay(self, data: SequenceData, *, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]: ...


class TrainingStrategy(Protocol):
    """How one model trains; the :class:`~seqrec.train.Trainer` drives it.

    ``setup`` is called once with the model (on its device), the training data and the
    trainer's NumPy generator (the only randomness besides torch's scoped global RNG).
    ``run_epoch`` runs one pass and returns ``(loss_sum, n_units)`` — the mean loss of the
    epoch is their ratio; it may call ``progress(n)`` to advance a progress bar by ``n``
    units (``units`` names them, e.g. ``"ev"``), and raises
    :class:`~seqrec.exceptions.DivergenceError` on a non-finite loss (naming the step).
    ``finish`` writes trained weights into the model (called before each validation and
    at the end). ``state_dict``/``load_state_dict`` hold what a checkpoint needs beyond the
    model weights: optimiser state, caches, counters (tensors and JSON-able values). An
    optional ``info() -> dict`` gives facts for the run's report (e.g. how many sequences
    were truncated), stored in ``Recommender.fit_info_["training"]``.
    """

    units: str

    def setup(
        self, model: Any, data: SequenceData, *, rng: np.random.Generator, device: torch.device
    ) -> None: ...

    def epoch_units(self) -> int: ...

    def run_epoch(self, progress: Callable[[int], None] | None) -> tuple[float, int]: ...

    def finish(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


StrategyFactory = Callable[[Any, Any, "TrainConfig"], TrainingStrategy]
"""``(model_config, objective_config_or_None, train_config) -> TrainingStrategy``."""


@dataclass(frozen=True)
class ModelSpec:
    """What a model is, for everything that must not name it.

    Attributes
    ----------
    name
        Registry key used by the CLI and experiment files (``model.name``).
    config
        The model's pydantic config class (``extra="forbid"``; its ``name`` field is a
        ``Literal[name]`` so the :data:`~seqrec.models.ModelConfig` union discriminates).
    task
        ``"next-item"`` or ``"next-basket"``.
    build
        ``(config, n_items) -> model``: an untrained model for a vocabulary of ``n_items``
        (padding included).
    strategy
        Trained models: builds the :class:`TrainingStrategy`. ``None``: the model has its
        own ``fit(data) -> self`` and takes no ``[train]``/``[objective]`` settings.
    objective
        Config class of an extra ``[objective]`` section the strategy takes (GRU4Rec's
        loss/negatives), or ``None`` (giving one is then an error naming the model).
    train_defaults
        Values for the ``[train]`` fields the user left unset (``None``): e.g. SASRec's
        ``{"optimizer": "adam", "learning_rate": 1e-3}``.
    example
        A small, fast configuration for the contract suite (:mod:`seqrec.testing`) and the
        docs: ``{"model": {...}, "objective": {...}, "train": {...}}`` (sections optional).
    planted_recall
        The band of recall@20 the example reaches on the contract suite's planted task
        (:func:`seqrec.data.synthetic.synthetic_sessions`, 100 items: chance 0.2, oracle
        ~0.92); a model that cannot use order (popularity) sits near chance.
    summary
        One line for ``--help`` and docs.
    """

    name: str
    config: type[BaseModel]
    task: Task
    build: Callable[[Any, int], Any]
    strategy: StrategyFactory | None = None
    objective: type[BaseModel] | None = None
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    example: Mapping[str, Any] = field(default_factory=dict)
    planted_recall: tuple[float, float] = (0.0, 1.0)
    summary: str = ""

    @property
    def trained(self) -> bool:
        return self.strategy is not None


# ------------------------------------------------------------------ state
def csr_to_tensors(name: str, m: Any) -> dict[str, Tensor]:
    """A SciPy CSR matrix as four tensors ``name.indptr/indices/data/shape``."""
    m = m.tocsr()
    return {
        f"{name}.indptr": torch.from_numpy(np.ascontiguousarray(m.indptr, dtype=np.int64)),
        f"{name}.indices": torch.from_numpy(np.ascontiguousarray(m.indices, dtype=np.int64)),
        f"{name}.data": torch.from_numpy(np.ascontiguousarray(m.data)),
        f"{name}.shape": torch.tensor(m.shape, dtype=torch.int64),
    }


def tensors_to_csr(name: str, tensors: dict[str, Tensor]) -> Any:
    """Inverse of :func:`csr_to_tensors`."""
    import scipy.sparse as sp

    try:
        shape = tuple(int(x) for x in tensors[f"{name}.shape"].tolist())
        return sp.csr_matrix(
            (
                tensors[f"{name}.data"].numpy(),
                tensors[f"{name}.indices"].numpy().astype(np.int32),
                tensors[f"{name}.indptr"].numpy(),
            ),
            shape=shape,
        )
    except (KeyError, ValueError) as e:
        raise ArtifactError(f"saved sparse matrix {name!r} is missing or damaged ({e})") from e


class ArrayModel:
    """Base for non-neural models: learned state in NumPy arrays / SciPy CSR matrices.

    Subclasses set ``state_fields`` (names of learned attributes, ending in ``_``) and
    implement ``fit(data) -> self`` and ``score(batch) -> Tensor``. Saving and loading are
    derived from ``state_fields``: arrays are stored as tensors, CSR matrices as their
    arrays, scalars (int/float/str/bool) as JSON.
    """

    state_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, n_items: int) -> None:
        self.config = config
        self.n_items = n_items

    def to(self, device: Any) -> ArrayModel:  # scores are computed on the CPU
        return self

    def eval(self) -> ArrayModel:
        return self

    def get_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        import scipy.sparse as sp

        tensors: dict[str, Tensor] = {}
        meta: dict[str, Any] = {}
        for f in self.state_fields:
            v = getattr(self, f)
            if sp.issparse(v):
                tensors.update(csr_to_tensors(f, v))
                meta[f] = "csr"
            elif isinstance(v, np.ndarray):
                tensors[f] = torch.from_numpy(np.ascontiguousarray(v))
                meta[f] = "array"
            elif isinstance(v, bool | int | float | str) or v is None:
                meta[f] = {"value": v}
            else:  # pragma: no cover - a programming error in a model
                raise TypeError(f"{type(self).__name__}.{f}: cannot save a {type(v).__name__}")
        return tensors, meta

    def set_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        for f in self.state_fields:
            kind = meta.get(f)
            if kind == "csr":
                setattr(self, f, tensors_to_csr(f, tensors))
            elif kind == "array":
                if f not in tensors:
                    raise ArtifactError(f"saved model lacks the array {f!r}")
                setattr(self, f, tensors[f].numpy().copy())
            elif isinstance(kind, dict) and "value" in kind:
                setattr(self, f, kind["value"])
            else:
                raise ArtifactError(f"saved model lacks the state field {f!r}")


def model_state(model: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors and JSON state of a fitted model, for saving."""
    if hasattr(model, "get_state"):
        return model.get_state()
    if isinstance(model, nn.Module):
        return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, {}
    raise TypeError(f"{type(model).__name__} has neither get_state() nor a state_dict()")


def load_model_state(model: Any, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Restore what :func:`model_state` returned (raises ArtifactError on a mismatch)."""
    if hasattr(model, "set_state"):
        model.set_state(tensors, meta)
        return
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise ArtifactError(f"weights do not match the config ({e})") from e


def model_device(model: Any) -> torch.device:
    """The device of a model's parameters/buffers (CPU for array models)."""
    if isinstance(model, nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            return t.device
    return torch.device("cpu")
