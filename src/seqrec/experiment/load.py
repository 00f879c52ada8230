"""Loading experiment files (with ``--set`` overrides) and expanding their grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seqrec.exceptions import ConfigError
from seqrec.experiment.config import ExperimentConfig, validate_config
from seqrec.experiment.files import read_config_file
from seqrec.experiment.overrides import apply_overrides, parse_override
from seqrec.experiment.search import expand, flatten_space


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read and validate an experiment file (TOML or YAML) with ``--set``-style overrides.

    Parameters
    ----------
    path
        A ``.toml``, ``.yaml`` or ``.yml`` file.
    overrides
        ``"section.key=value"`` strings applied in order; values are TOML values, else plain
        strings: ``"train.epochs=3"``, ``"model.layers=[200]"``, ``"model.name=pop"``.

    Returns
    -------
    ExperimentConfig
        With the file's ``[grid]`` table, if any, in ``grid`` (expand it with :func:`grid`).

    Raises
    ------
    ConfigError
        Missing/unparsable file, bad override syntax, unknown keys (the message names the key
        path and the valid keys) or invalid values.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "exp.toml"
    >>> _ = f.write_text('[data]\\ndataset = "synthetic"\\n[model]\\nname = "gru4rec"\\n')
    >>> load_experiment(f, ["model.layers=[32]", "train.epochs=2"]).model.layers
    [32]
    """
    path = Path(path)
    raw = read_config_file(path)
    if "grid" in raw and isinstance(raw["grid"], Mapping):
        raw["grid"] = flatten_space(raw["grid"])
        if not raw["grid"]:
            raise ConfigError(
                f"{path}: empty search space: the [grid] table has no keys; give it dotted "
                'keys with lists of values (e.g. "train.learning_rate" = [0.001, 0.01]) or '
                "remove it"
            )
    pairs = [parse_override(o) for o in overrides]
    raw = apply_overrides(raw, pairs)
    return validate_config(raw, source=str(path) + (" with overrides" if pairs else ""))


def grid(
    config: str | Path | ExperimentConfig,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    overrides: Sequence[str] = (),
) -> list[ExperimentConfig]:
    """Expand the search of an experiment into one config per run (points x seeds).

    Parameters
    ----------
    config
        An experiment file or config; its own ``[grid]`` table (the search space) and
        ``[search]`` section (grid or random, seeds, max_runs) are used.
    grid
        ``{"model.layers": [[50], [100]], "train.learning_rate": [0.001, 0.005]}``; its keys
        override the file's grid keys of the same name.
    overrides
        ``--set`` strings applied before expanding (only with a path).

    Returns
    -------
    list of ExperimentConfig
        In point order (a grid: product order, the last key varying fastest; a random
        search: draw order), the seeds of a point next to each other, each with an empty
        ``grid`` and no ``search``; one config (the input without its grid) when there is
        no search at all.

    Raises
    ------
    ConfigError
        A key that is not a dotted path, an empty or non-list value list, an empty random
        search space, more runs than ``search.max_runs``, or a point that does not validate
        (the message names the point).

    Examples
    --------
    >>> from seqrec.experiment import DataConfig
    >>> cfg = ExperimentConfig(data=DataConfig(dataset="synthetic"))
    >>> len(grid(cfg, {"model.layers": [[50], [100]], "train.learning_rate": [0.01, 0.1]}))
    4
    """
    if isinstance(config, ExperimentConfig):
        if overrides:
            raise ConfigError(
                "grid(): overrides apply to a file path; pass them to load_experiment"
            )
        cfg = config
    else:
        cfg = load_experiment(config, overrides)
    return expand(cfg, grid)


__all__ = ["grid", "load_experiment"]
