"""Loading experiment files (with ``--set`` overrides) and expanding their grids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seqrec.exceptions import ConfigError
from seqrec.experiment.config import ExperimentConfig, validate_config
from seqrec.experiment.files import drop_none, read_config_file
from seqrec.experiment.overrides import apply_overrides, flatten_dict, grid_points, parse_override


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
        raw["grid"] = flatten_dict(raw["grid"])
    pairs = [parse_override(o) for o in overrides]
    raw = apply_overrides(raw, pairs)
    return validate_config(raw, source=str(path) + (" with overrides" if pairs else ""))


def grid(
    config: str | Path | ExperimentConfig,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    overrides: Sequence[str] = (),
) -> list[ExperimentConfig]:
    """Expand the cartesian product of dotted keys into one config per grid point.

    Parameters
    ----------
    config
        An experiment file or config; its own ``[grid]`` table is used too.
    grid
        ``{"model.layers": [[50], [100]], "train.learning_rate": [0.001, 0.005]}``; its keys
        override the file's grid keys of the same name.
    overrides
        ``--set`` strings applied before expanding (only with a path).

    Returns
    -------
    list of ExperimentConfig
        In product order (the last key varies fastest), each with an empty ``grid``; one
        config (the input without its grid) when there is no grid at all.

    Raises
    ------
    ConfigError
        A key that is not a dotted path, an empty or non-list value list, or a grid point
        that does not validate (the message names the point).

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
    spec: dict[str, Sequence[Any]] = {**cfg.grid, **flatten_dict(dict(grid or {}))}
    base = cfg.model_dump(mode="json")
    base.pop("grid", None)
    base = drop_none(base)
    if not spec:
        return [validate_config(base, "config")]
    return [
        validate_config(apply_overrides(base, point.items()), f"grid point {point}")
        for point in grid_points(spec)
    ]


__all__ = ["grid", "load_experiment"]
