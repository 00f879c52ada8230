"""The sections of an experiment file and :class:`ExperimentConfig`, validated.

Each section is a frozen pydantic model with ``extra="forbid"`` (unknown keys are errors).
Two sections are discriminated unions: ``[model]`` on ``name`` (the classes come from the
explicit registry :data:`seqrec.models.MODELS`; no ``name`` means ``"gru4rec"``) and
``[split]`` on ``method`` (:data:`SPLITS`; no ``method`` means ``"time"``). A key of another
model or method is an error that says where it belongs. :func:`validate_config` validates a
raw mapping and turns pydantic's errors into one readable
:class:`~seqrec.exceptions.ConfigError` (:func:`~seqrec.experiment.errors.friendly_errors`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from seqrec._config import ConfigModel
from seqrec.evaluate import Ties
from seqrec.exceptions import ConfigError
from seqrec.experiment.errors import UnionSection, friendly_errors
from seqrec.experiment.files import compact_toml, drop_none
from seqrec.metrics import parse_basket_metrics, parse_metrics
from seqrec.models import MODELS, ModelConfig
from seqrec.models.gru4rec import ObjectiveConfig  # GRU4Rec's [objective] (moved from losses)
from seqrec.train import TrainConfig

SYNTHETIC = "synthetic"
SYNTHETIC_BASKETS = "synthetic-baskets"
"""``data.dataset`` value selecting :func:`seqrec.data.synthetic.synthetic_sessions`."""

VARIANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""What a search variant's name may be (it is a column value and a label)."""

DEFAULT_MODEL = "gru4rec"
"""The model of a ``[model]`` table without ``name`` (and of a file without ``[model]``)."""

DEFAULT_SPLIT = "time"
"""The method of a ``[split]`` table without ``method``."""


def model_takes_objective(name: str) -> bool:
    """Whether model ``name`` trains with an ``[objective]`` section (GRU4Rec's loss and
    negatives); models whose spec has no objective class take none."""
    entry = MODELS.get(name)
    if entry is None or not hasattr(entry, "objective"):
        return True  # unknown (reported elsewhere), or a registry without specs
    return entry.objective is not None


def model_config_classes() -> dict[str, type[BaseModel]]:
    """``model name -> config class`` from the registry :data:`seqrec.models.MODELS`."""
    out: dict[str, type[BaseModel]] = {}
    for name, entry in MODELS.items():
        cls = getattr(entry, "config", None)  # a ModelSpec
        out[name] = cls if cls is not None else entry[0]  # type: ignore[index]
    return out


class _Section(ConfigModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# =============================================================================== data
class SyntheticConfig(_Section):
    """Arguments of :func:`seqrec.data.synthetic.synthetic_sessions` (``[data.synthetic]``)."""

    n_sessions: int = Field(2000, ge=1)
    n_items: int = Field(200, ge=2)
    mean_length: float = Field(8.0, ge=2.0)
    p_follow: float = Field(0.9, ge=0.0, le=1.0)
    seed: int = 0
    start_time: float = 1.6e9
    span_days: float = Field(60.0, gt=0.0)


class SyntheticBasketsConfig(_Section):
    """Settings of :func:`seqrec.data.synthetic.synthetic_baskets` (``[data.synthetic_baskets]``)."""

    n_users: int = Field(1000, ge=1)
    n_items: int = Field(2000, ge=2)
    mean_baskets: float = Field(16.0, gt=4.0)
    max_baskets: int = Field(100, ge=4)
    mean_size: float = Field(10.0, ge=1.0)
    n_staples: float = Field(12.0, ge=1.0)
    p_repeat: float = Field(0.6, ge=0.0, le=1.0)
    zipf: float = Field(1.0, ge=0.0)
    seed: int = 0


class DataConfig(_Section):
    """Where the events come from (``[data]``): a registered dataset or a file.

    Parameters
    ----------
    dataset
        A name of :data:`seqrec.datasets.DATASETS` (``"ml-100k"``, ``"ml-1m"``,
        ``"yoochoose-100k"``) found under ``data_dir``, ``$SEQREC_DATA`` or the user cache,
        or ``"synthetic"`` (generated from ``[data.synthetic]``, no file needed), or
        ``"synthetic-baskets"`` (a next-basket log from ``[data.synthetic_baskets]``).
    path
        An event file (CSV/TSV, optionally gzip-compressed, or Parquet). Exactly one of
        ``dataset`` and ``path``.
    format
        How to read ``path``: ``"movielens"`` (``u.data`` / ``ratings.dat``),
        ``"session-log"`` (GRU4Rec TSV ``SessionId ItemId Time``), ``"generic"``
        (:func:`~seqrec.data.read_interactions` with ``columns``/``sep``/``time_unit``),
        ``"item-lists"`` (one session per row, its items in one space-separated field, no
        times: :func:`~seqrec.data.readers.read_item_lists`; ``columns`` may name
        ``session_id`` and ``item_id`` = the items column) or ``"auto"`` (MovieLens for a
        file called ``u.data``/``ratings.dat``, else generic). Next-basket data:
        ``"baskets"`` (a user/basket/item log, :func:`~seqrec.data.baskets.read_basket_log`
        with ``columns``/``sep``/``time_unit``; baskets by ``basket_id`` or by timestamp) and
        ``"basket-json"`` (``{user: [[items], ...]}``, :func:`~seqrec.data.baskets.read_basket_json`).
    columns, sep, time_unit
        Passed to :func:`~seqrec.data.read_interactions` (generic format; ``time_unit``
        ``"auto"`` detects seconds/milliseconds/... and says which it assumed).
    data_dir
        Extra root searched first for registered datasets.
    download
        Fetch a registered dataset that is not found locally (off by default).
    synthetic
        Settings of the synthetic generator (only with ``dataset = "synthetic"``).
    """

    dataset: str | None = None
    path: str | None = None
    format: Literal[
        "auto", "movielens", "session-log", "generic", "item-lists", "baskets", "basket-json"
    ] = "auto"
    columns: dict[str, str | int] | None = None
    sep: str | None = None
    time_unit: Literal["auto", "s", "ms", "us", "ns", "datetime"] = "auto"
    data_dir: str | None = None
    download: bool = False
    synthetic: SyntheticConfig | None = None
    synthetic_baskets: SyntheticBasketsConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        from seqrec.datasets import DATASETS

        if (self.dataset is None) == (self.path is None):
            raise ValueError(
                "set exactly one of data.dataset (a registered name or 'synthetic') and "
                "data.path (an event file)"
            )
        if (
            self.dataset is not None
            and self.dataset not in (SYNTHETIC, SYNTHETIC_BASKETS)
            and self.dataset not in DATASETS
        ):
            raise ValueError(
                f"unknown dataset {self.dataset!r}; registered: {sorted(DATASETS)} or "
                f"{SYNTHETIC!r}; for your own file set data.path instead"
            )
        if self.synthetic is not None and self.dataset != SYNTHETIC:
            raise ValueError("[data.synthetic] is only used with dataset = 'synthetic'")
        if self.synthetic_baskets is not None and self.dataset != SYNTHETIC_BASKETS:
            raise ValueError(
                f"[data.synthetic_baskets] is only used with dataset = {SYNTHETIC_BASKETS!r}"
            )
        if self.path is None and (
            self.columns is not None
            or self.sep is not None
            or self.format != "auto"
            or self.time_unit != "auto"
        ):
            raise ValueError(
                "data.columns, data.sep, data.time_unit and data.format apply to data.path only"
            )
        return self


# ========================================================================= preprocess
class PreprocessConfig(_Section):
    """Cleaning before the split (``[preprocess]``), applied in this order.

    Each key maps onto a step of :data:`seqrec.preprocess.STEPS` (see
    :func:`seqrec.experiment.prepare.preprocess_steps`).

    Parameters
    ----------
    min_rating
        Keep events with ``rating >= min_rating`` (step ``min_rating``; needs a rating
        column); None: keep all.
    session_gap_seconds
        Cut sessions at time gaps larger than this (step ``sessionize``: users -> sessions
        when the data has a user column, else existing sessions are split); None: keep the
        sessions as read.
    drop_consecutive_repeats
        Drop an event repeating the previous item of its session (step
        ``drop_consecutive_repeats``).
    min_session_length, min_item_support
        Drop sessions shorter than this and items with fewer events (steps
        ``min_session_length``, ``min_item_support``), repeated to a fixed point when
        ``until_stable`` (the largest sub-log meeting both, as
        :func:`seqrec.preprocess.clean`); one round otherwise. 1 disables a filter.
    """

    min_session_length: int = Field(2, ge=1)
    min_item_support: int = Field(5, ge=1)
    until_stable: bool = True
    min_rating: float | None = None
    drop_consecutive_repeats: bool = False
    session_gap_seconds: float | None = Field(None, gt=0.0)


# ============================================================================== split
class TimeSplitConfig(_Section):
    """``[split] method = "time"``: :func:`seqrec.split.split_by_time`.

    Parameters
    ----------
    test_days, valid_days
        The last ``test_days`` are test, the ``valid_days`` before them valid (0: no valid
        part); cut-offs count back from the last timestamp of the cleaned data.
    by
        ``"session_end"``: whole sessions go by their last event; ``"event"``: each event by
        its own time (the reference notebook).
    at_cutoff
        Where a key exactly at a cut-off goes: the ``"earlier"`` part (default) or the
        ``"later"`` one (the notebook's ``Time < cutoff`` is train).
    train_items_only, min_item_support_eval, min_session_length_eval
        Valid and test keep items seen in train, then are cleaned to a fixed point.
    """

    method: Literal["time"] = "time"
    test_days: float = Field(14.0, gt=0.0)
    valid_days: float = Field(14.0, ge=0.0)
    by: Literal["session_end", "event"] = "session_end"
    at_cutoff: Literal["earlier", "later"] = "earlier"
    train_items_only: bool = True
    min_item_support_eval: int = Field(1, ge=1)
    min_session_length_eval: int = Field(2, ge=1)


class LeaveOneOutConfig(_Section):
    """``[split] method = "leave-one-out"``: :func:`seqrec.split.leave_last_out`.

    Parameters
    ----------
    n
        Events held out per sequence for test.
    valid
        Also hold out the ``n`` events before them for validation.
    """

    method: Literal["leave-one-out"] = "leave-one-out"
    n: int = Field(1, ge=1)
    valid: bool = True


class RatioSplitConfig(_Section):
    """``[split] method = "ratio"``: :func:`seqrec.split.split_by_ratio`.

    Parameters
    ----------
    test_ratio, valid_ratio
        Fractions of each sequence held out (the last events) for test and validation.
    """

    method: Literal["ratio"] = "ratio"
    test_ratio: float = Field(0.2, gt=0.0, lt=1.0)
    valid_ratio: float = Field(0.0, ge=0.0, lt=1.0)


class PresplitConfig(_Section):
    """``[split] method = "presplit"``: :func:`seqrec.split.presplit`.

    Parameters
    ----------
    column
        The dataset's column saying ``"train"``/``"valid"``/``"test"`` (e.g. ``yoochoose-100k``).
    train_items_only, min_item_support_eval, min_session_length_eval
        As in :class:`TimeSplitConfig`.
    """

    method: Literal["presplit"] = "presplit"
    column: str = "split"
    train_items_only: bool = True
    min_item_support_eval: int = Field(1, ge=1)
    min_session_length_eval: int = Field(2, ge=1)


SPLITS: dict[str, type[_Section]] = {
    "time": TimeSplitConfig,
    "leave-one-out": LeaveOneOutConfig,
    "ratio": RatioSplitConfig,
    "presplit": PresplitConfig,
}
"""``[split]`` method -> its config class (explicit registry)."""


def _split_method(v: Any) -> str | None:
    if isinstance(v, Mapping):
        return v.get("method", DEFAULT_SPLIT)
    return getattr(v, "method", None)


SplitConfig = Annotated[
    Annotated[TimeSplitConfig, Tag("time")]
    | Annotated[LeaveOneOutConfig, Tag("leave-one-out")]
    | Annotated[RatioSplitConfig, Tag("ratio")]
    | Annotated[PresplitConfig, Tag("presplit")],
    Discriminator(_split_method),
]
"""Any ``[split]`` config; ``method`` (default ``"time"``) selects the class of :data:`SPLITS`."""


# =============================================================================== eval
class EvalConfig(_Section):
    """Evaluation protocol (``[eval]``), recorded in every report.

    Parameters
    ----------
    metrics
        ``"name@k"`` strings: recall, mrr, ndcg, hit.
    ties
        Rank of a target tied with other items: ``"conservative"`` (below all of them),
        ``"optimistic"``, ``"average"``.
    exclude_seen
        Mask the items seen earlier in the session.
    candidates
        ``"full"`` ranking (default) or an int: the target among that many uniformly sampled
        negatives (a *sampled* metric, flagged as such in the protocol).
    on
        The parts evaluated after training.
    threshold, set_size, restrict, macro_items
        Next-basket models only (see :func:`seqrec.evaluate.evaluate_baskets`): the
        decision threshold of the predicted set (``"valid"``: the threshold of
        :data:`~seqrec.evaluate.THRESHOLD_GRID` with the best F1 micro on the validation
        part, then used on test), a fixed set size instead, top-N frequency candidates
        (a restricted metric, flagged), and the items F1 macro averages over. Next-basket
        metrics: ``recall@k``, ``precision@k``, ``ndcg@k``, ``phr@k``,
        ``repeat_recall@k``, ``explore_recall@k``, ``f1_micro``, ``f1_macro``; their
        default is :data:`~seqrec.evaluate.DEFAULT_BASKET_METRICS`.
    """

    metrics: list[str] = Field(
        default_factory=lambda: ["recall@20", "mrr@20", "ndcg@20"], min_length=1
    )
    ties: Ties = "conservative"
    exclude_seen: bool = False
    candidates: Literal["full"] | int = "full"
    on: list[Literal["valid", "test"]] = Field(default_factory=lambda: ["valid", "test"])
    threshold: float | Literal["valid"] = 0.5
    set_size: int | None = Field(None, ge=1)
    restrict: int | None = Field(None, ge=1)
    macro_items: Literal["catalogue", "occurring"] = "catalogue"

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        try:
            parse_metrics(v)
        except ConfigError as e:
            try:  # next-basket metrics; the experiment checks them against the model's task
                parse_basket_metrics(v)
            except ConfigError:
                raise ValueError(str(e)) from None
        return v

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float | str) -> float | str:
        if v != "valid" and not 0.0 < float(v) < 1.0:
            raise ValueError(f"threshold must be in (0, 1) or 'valid', got {v}")
        return v

    def basket_options(self) -> dict[str, Any]:
        """The next-basket options for :func:`seqrec.evaluate.evaluate_baskets` (a
        ``"valid"`` threshold is resolved by the caller)."""
        out: dict[str, Any] = {"macro_items": self.macro_items}
        if self.threshold != "valid":
            out["threshold"] = float(self.threshold)
        if self.set_size is not None:
            out["set_size"] = self.set_size
        if self.restrict is not None:
            out["restrict"] = self.restrict
        return out

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v: Literal["full"] | int) -> Literal["full"] | int:
        if isinstance(v, int) and v < 1:
            raise ValueError("candidates must be 'full' or a positive number of negatives")
        return v


# ============================================================================= search
class RangeSpec(_Section):
    """A range of a random search dimension (``{low, high, log, int}`` in ``[grid]``).

    Parameters
    ----------
    low, high
        Bounds (inclusive for integers); ``low < high``.
    log
        Draw uniformly on a log scale (``low > 0``), as for learning rates.
    integer
        Draw integers (rounded after a log draw).
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _check(self) -> RangeSpec:
        if not self.low < self.high:
            raise ValueError(f"a range needs low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got low={self.low}")
        return self


OPTUNA_KEYS = (
    "sampler",
    "pruner",
    "metric",
    "startup_trials",
    "pruner_startup_trials",
    "pruner_warmup_epochs",
)
"""The ``[search]`` keys of ``method = "optuna"`` only."""


class SearchConfig(_Section):
    """How the search space of ``[grid]`` is searched, and how often each point runs
    (``[search]``).

    Parameters
    ----------
    method
        ``"grid"`` (default): every point of the cartesian product of the ``[grid]`` lists;
        ``"random"``: ``n`` points drawn from the ``[grid]`` dimensions (a list: one of its
        values, uniformly; a table ``{low, high, log, integer}``: a number in that range).
    n
        The budget of a random search (distinct points; fewer when the space is smaller).
    seed
        The seed of the random draw (the points do not depend on the runs' ``seed``).
    seeds, n_seeds
        Run every point with each of these values of the experiment's ``seed``, or with
        ``n_seeds`` seeds ``seed, seed + 1, ...`` (at most one of the two). Tables then show
        mean, standard deviation and a 95% t-interval over the seeds of each point.
    max_runs
        Refuse (a ConfigError saying how many it would be) a search of more runs than this
        (points x seeds); None: no limit.
    variants
        ``method = "variants"``: named points, each a table of dotted keys and the one value
        each takes (``{}``: the file as it is), e.g. the one-change-at-a-time experiments of
        a notebook: ``baseline = {}``, ``hidden_100 = {"model.layers" = [100]}``. A
        ``[grid]`` beside them is crossed with every variant (its keys may not be a
        variant's). The name becomes the ``variant`` of the runs (a column of the tables,
        the label in reports).
    sampler, pruner, metric, startup_trials, pruner_startup_trials, pruner_warmup_epochs
        ``method = "optuna"`` (``pip install 'seqrec[optuna]'``): ``n`` trials chosen by
        Optuna's ``sampler`` (``"tpe"``, default, or ``"random"``; seeded by ``seed``) from
        the ``[grid]`` dimensions (lists: categorical; ranges: floats, log or integers),
        maximising ``metric`` on the validation part (default: ``train.valid_metric`` when
        ``eval.metrics`` has it, else the first of ``eval.metrics``). ``pruner =
        "median"`` (default) stops a trial after an epoch whose validation value is below
        the median of the earlier trials at that epoch, once ``pruner_startup_trials``
        trials have ended and after ``pruner_warmup_epochs`` epochs; ``"none"`` never
        prunes. TPE draws the first ``startup_trials`` trials at random. See
        :mod:`seqrec.experiment.optuna_search`.
    """

    method: Literal["grid", "random", "variants", "optuna"] = "grid"
    n: int | None = Field(None, ge=1)
    seed: int = 0
    seeds: list[int] | None = Field(None, min_length=1)
    n_seeds: int | None = Field(None, ge=1)
    max_runs: int | None = Field(None, ge=1)
    variants: dict[str, dict[str, Any]] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "none"] = "median"
    metric: str | None = None
    startup_trials: int = Field(10, ge=0)
    pruner_startup_trials: int = Field(5, ge=0)
    pruner_warmup_epochs: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> SearchConfig:
        if self.method == "variants":
            if not self.variants:
                raise ValueError(
                    "search.method = 'variants' needs named points: [search.variants] "
                    'baseline = {}, hidden_100 = {"model.layers" = [100]}, ...'
                )
            bad = [k for k in self.variants if not re.fullmatch(VARIANT_PATTERN, k)]
            if bad:
                raise ValueError(
                    f"variant names {bad} may only use letters, digits, '_', '-' and '.'"
                )
        elif self.variants is not None:
            raise ValueError("search.variants needs search.method = 'variants'")
        if self.seeds is not None and self.n_seeds is not None:
            raise ValueError("set at most one of search.seeds and search.n_seeds")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"search.seeds has repeated values: {self.seeds}")
        if self.method == "random" and self.n is None:
            raise ValueError("search.method = 'random' needs a budget: search.n = <points>")
        if self.method == "optuna" and self.n is None:
            raise ValueError("search.method = 'optuna' needs a budget: search.n = <trials>")
        fields = type(self).model_fields
        optuna_keys = [k for k in OPTUNA_KEYS if getattr(self, k) != fields[k].default]
        if self.method != "optuna" and optuna_keys:
            raise ValueError(
                f"search.{', search.'.join(optuna_keys)} apply to method = 'optuna' only "
                f"(method is {self.method!r})"
            )
        if self.method in ("grid", "variants") and self.n is not None:
            raise ValueError(
                f"search.n is the budget of method = 'random'; method = {self.method!r} runs "
                "every point"
            )
        return self

    def objective_metric(self, train: TrainConfig, metrics: list[str]) -> str:
        """The validation metric an Optuna search maximises (see ``metric``)."""
        if self.metric is not None:
            return self.metric
        return train.valid_metric if train.valid_metric in metrics else metrics[0]

    def seed_list(self, base: int) -> list[int]:
        """The seeds each point runs with (``[base]`` without seeds/n_seeds)."""
        if self.seeds is not None:
            return list(self.seeds)
        return [base + i for i in range(self.n_seeds or 1)]


# =========================================================================== tracking
class TrackingConfig(_Section):
    """Optional experiment tracking (``[tracking]``, ``seqrec run --mlflow``): each run is
    also logged to MLflow (``pip install 'seqrec[mlflow]'``); seqrec's run directories stay
    the source of truth. Not part of a point id, nor of a run's resolved config.

    Parameters
    ----------
    mlflow
        Where: a directory (it gets ``mlflow.db``, an SQLite store, and ``artifacts/``) or
        a tracking URI (``sqlite:///path/mlflow.db``, ``http://host:5000``, ...).
    experiment
        The MLflow experiment the runs go to (default: the experiment's ``name``).
    artifacts
        Also log the finished run directory (config, metrics, log, saved model) as the
        MLflow run's artifacts.
    """

    mlflow: str = Field(min_length=1)
    experiment: str | None = Field(None, min_length=1)
    artifacts: bool = True


# ========================================================================= experiment
def _default_model() -> BaseModel:
    return model_config_classes()[DEFAULT_MODEL]()


class ExperimentConfig(_Section):
    """A whole experiment: data -> preprocess -> split -> model/objective/train -> eval.

    ``objective`` belongs to the models that train with one (GRU4Rec): for them a missing
    section takes the defaults; for the others (``pop``) giving one is an error.
    ``grid`` maps dotted keys to lists of values (or, for a random search, ranges) and
    ``search`` says how to search them and with which seeds (see
    :func:`seqrec.experiment.grid`); both are empty in the expanded configs and in every
    resolved config written by :func:`seqrec.experiment.run`.
    """

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = 0
    variant: str | None = Field(None, pattern=VARIANT_PATTERN)
    """The name of the search variant this run is (``[search.variants]``); a label, not
    part of the point id."""
    data: DataConfig
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    split: SplitConfig = Field(default_factory=TimeSplitConfig)
    model: ModelConfig = Field(default_factory=_default_model)
    objective: ObjectiveConfig | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    grid: dict[str, list[Any] | RangeSpec] = Field(default_factory=dict)
    search: SearchConfig | None = None
    tracking: TrackingConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        from seqrec.evaluate import DEFAULT_BASKET_METRICS
        from seqrec.models import MODELS

        basket = MODELS[self.model.name].task == "next-basket"
        parse = parse_basket_metrics if basket else parse_metrics
        try:
            parse([self.train.valid_metric])
        except ConfigError as e:
            raise ValueError(f"train.valid_metric: {e}") from None
        ev = self.eval
        if basket:
            if "metrics" not in ev.model_fields_set:
                ev = ev.model_copy(update={"metrics": list(DEFAULT_BASKET_METRICS)})
                object.__setattr__(self, "eval", ev)
            if ev.candidates != "full":
                raise ValueError(
                    "eval.candidates (sampled negatives) is for next-item models; a "
                    "next-basket evaluation ranks every item, or eval.restrict = N candidates"
                )
        else:
            defaults = EvalConfig()
            given = {
                k
                for k in ("threshold", "set_size", "restrict", "macro_items")
                if getattr(ev, k) != getattr(defaults, k)
            }
            if given:
                raise ValueError(
                    f"eval.{', eval.'.join(sorted(given))} apply to next-basket models only; "
                    f"{self.model.name!r} predicts next items"
                )
        try:
            parse(ev.metrics)
        except ConfigError as e:
            raise ValueError(f"eval.metrics: {e} (model {self.model.name!r})") from None
        ranges = [k for k, v in self.grid.items() if isinstance(v, RangeSpec)]
        if ranges and (self.search is None or self.search.method not in ("random", "optuna")):
            raise ValueError(
                f"grid keys {ranges} are ranges ({{low, high}}), which only a random or optuna "
                "search draws from: set [search] method = 'random' and n = <budget>, or give "
                "lists"
            )
        if self.search is not None and self.search.method == "optuna":
            self._check_optuna(parse)
        takes = model_takes_objective(self.model.name)
        if self.objective is None and takes:
            object.__setattr__(self, "objective", ObjectiveConfig())
        elif self.objective is not None and not takes:
            raise ValueError(
                f"model {self.model.name!r} takes no [objective] section (its loss is set in "
                "[model]); remove the [objective] section"
            )
        return self

    def _check_optuna(self, parse: Any) -> None:
        """An Optuna search maximises a validation metric that the runs compute."""
        assert self.search is not None
        metric = self.search.objective_metric(self.train, self.eval.metrics)
        if self.search.metric is not None:
            try:
                parse([metric])
            except ConfigError as e:
                raise ValueError(f"search.metric: {e} (model {self.model.name!r})") from None
        if metric not in self.eval.metrics:
            raise ValueError(
                f"search.metric {metric!r} is not in eval.metrics {self.eval.metrics}: add it, "
                "the search maximises its value on the validation part"
            )
        if "valid" not in self.eval.on:
            raise ValueError(
                "an optuna search maximises a validation metric: eval.on must include 'valid'"
            )
        trains = getattr(MODELS[self.model.name], "strategy", None) is not None
        if trains and self.search.pruner != "none" and metric != self.train.valid_metric:
            raise ValueError(
                f"the pruner reads the per-epoch validation of train.valid_metric "
                f"({self.train.valid_metric!r}), not the search metric {metric!r}: set "
                f"train.valid_metric = {metric!r}, or search.pruner = 'none'"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, None values and an empty grid left out (TOML has no null)."""
        d = drop_none(self.model_dump(mode="json"))
        if not d.get("grid"):
            d.pop("grid", None)
        return d

    def without_search(self) -> dict[str, Any]:
        """:meth:`to_dict` without ``grid`` and ``search`` (the base of the points)."""
        d = self.to_dict()
        d.pop("grid", None)
        d.pop("search", None)
        return d

    def to_toml(self) -> str:
        """The resolved config as TOML (reload it with :func:`seqrec.experiment.load_experiment`)."""
        return compact_toml(tomli_w.dumps(self.to_dict()))


def union_sections() -> dict[str, UnionSection]:
    """The discriminated-union sections of :class:`ExperimentConfig` (for messages and
    :func:`~seqrec.experiment.overrides.apply_overrides`)."""
    return {
        "model": UnionSection("name", "model", "registered models", model_config_classes()),
        "split": UnionSection("method", "method", "valid methods", SPLITS),
    }


def validate_config(raw: Mapping[str, Any], source: str = "") -> ExperimentConfig:
    """Validate a raw experiment mapping; pydantic errors become one readable ConfigError.

    A ``[model]`` table without ``name`` gets ``name = "gru4rec"``.

    Parameters
    ----------
    raw
        The mapping of an experiment file (sections as nested mappings).
    source
        Where it came from, named in error messages.
    """
    raw = dict(raw)
    if isinstance(raw.get("model"), Mapping) and "name" not in raw["model"]:
        raw["model"] = {"name": DEFAULT_MODEL, **raw["model"]}
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        raise friendly_errors(
            e, raw, source, root=ExperimentConfig, unions=union_sections()
        ) from None


__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SPLIT",
    "SPLITS",
    "SYNTHETIC",
    "SYNTHETIC_BASKETS",
    "SyntheticBasketsConfig",
    "DataConfig",
    "RangeSpec",
    "SearchConfig",
    "EvalConfig",
    "ExperimentConfig",
    "LeaveOneOutConfig",
    "PreprocessConfig",
    "PresplitConfig",
    "RatioSplitConfig",
    "SplitConfig",
    "SyntheticConfig",
    "TimeSplitConfig",
    "TrackingConfig",
    "model_config_classes",
    "model_takes_objective",
    "union_sections",
    "validate_config",
]
