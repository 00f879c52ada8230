"""Reports comparing finished runs: Markdown + a self-contained HTML page with matplotlib plots.

:func:`build` reads run directories (or grid directories holding them), groups them by
evaluation protocol (dataset fingerprint, split, candidates, ties, masking, cutoffs; runs under
different protocols get a warning naming the difference and one section each), groups the
runs into points (the seeds of one config, :func:`~seqrec.experiment.point_id`) and writes
into ``out_dir``:

``report.md``
    Per protocol: the protocol, a table of every point (best first; the varied parameters as
    columns; the metrics as mean ± std over seeds, with the 95% t-interval of the main
    metric) and a significance table (the best point against the others: the paired
    difference over queries, its bootstrap interval and the Wilcoxon p-value,
    :func:`seqrec.significance.paired_test`); then the plots as image links.
``report.html``
    The same, self-contained: the PNGs are embedded (base64).
``learning_curves.png``, ``metric_vs_<key>.png``, ``models.png``, ``accuracy_vs_time.png``
    Training loss and validation metric per epoch (one line per run); the main metric against
    each varied parameter (error bars: std over seeds); the best points as bars; the metric
    against training time (log scales where values span two decades or more).

matplotlib is an optional dependency (``pip install seqrec[report]``); the Agg backend is
used, so no display is needed.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seqrec.exceptions import ConfigError, DataError
from seqrec.significance import NOT_PER_QUERY, PairedTest, paired_test

logger = logging.getLogger(__name__)

PROTOCOL_KEYS = ("task", "candidates", "sampled", "ties", "exclude_seen", "padding_masked")
"""The keys of a report's protocol taken from ``metrics.json`` (besides the dataset, its
fingerprint, the split and the cutoffs)."""

MAX_LEGEND = 12
"""Runs named in a learning-curve legend (the rest are drawn, not named)."""

MAX_SIGNIFICANCE = 10
"""Rows of a significance table: the best point against the best point of each other model,
then against the next best points, at most this many."""

SIGNIFICANCE_BOOT = 2000
"""Bootstrap resamples per row of a significance table (seed 0)."""

DPI = 110


@dataclass
class ReportResult:
    """What :func:`build` wrote."""

    out_dir: Path
    markdown: Path
    html: Path
    images: list[Path]
    n_runs: int
    n_points: int
    metric: str
    part: str
    protocols: list[dict[str, Any]] = field(default_factory=list)
    significance: list[PairedTest] = field(default_factory=list)
    """The :class:`~seqrec.significance.PairedTest` of every significance row (all groups)."""
    warnings: list[str] = field(default_factory=list)
    """What the report warned about (runs under different protocols)."""


@dataclass
class _Run:
    path: Path
    config: Any
    metrics: dict[str, Any]
    point: str
    protocol: dict[str, Any]


# ----------------------------------------------------------------------------- input
def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Finished run directories under ``paths``: each is a run directory (it holds
    ``metrics.json``) or a directory of them (a grid); failed and unfinished runs are
    skipped."""
    from seqrec.experiment import METRICS_FILE

    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DataError(f"{p}: no such run or grid directory")
        if (p / METRICS_FILE).is_file():
            found.append(p)
            continue
        subs = sorted(
            d
            for d in p.iterdir()
            if d.is_dir() and not d.name.startswith(".") and (d / METRICS_FILE).is_file()
        )
        if not subs:
            raise DataError(
                f"{p} holds no finished run (no {METRICS_FILE} in it or its subdirectories)"
            )
        found += subs
    return list(dict.fromkeys(found))


def _unfinished_with(
    paths: Sequence[str | Path], name: str, describe: Callable[[dict[str, Any]], str]
) -> dict[Path, str]:
    """``run directory -> describe(record)`` of the directories under ``paths`` (each path
    and its children) that hold the JSON record ``name`` and no ``metrics.json``."""
    from seqrec.experiment import METRICS_FILE

    out: dict[Path, str] = {}
    for p in map(Path, paths):
        for d in [p, *(sorted(p.iterdir()) if p.is_dir() else [])]:
            f = d / name
            if f.is_file() and not (d / METRICS_FILE).is_file():
                try:
                    out[d] = describe(json.loads(f.read_text()))
                except (OSError, ValueError):
                    out[d] = f"(unreadable {name})"
    return out


def pruned_runs(paths: Sequence[str | Path]) -> dict[Path, str]:
    """``run directory -> message`` of the Optuna trials under ``paths`` that were pruned
    (directories with ``pruned.json`` and no ``metrics.json``)."""
    from seqrec.experiment.optuna_search import PRUNED_FILE

    return _unfinished_with(paths, PRUNED_FILE, lambda rec: str(rec.get("message")))


def failed_runs(paths: Sequence[str | Path]) -> dict[Path, str]:
    """``run directory -> "Type: message"`` of the failed grid points under ``paths``
    (directories with ``error.json`` and no ``metrics.json``)."""
    from seqrec.experiment import ERROR_FILE

    return _unfinished_with(
        paths, ERROR_FILE, lambda rec: f"{rec.get('error')}: {rec.get('message')}"
    )


def _cutoffs(metrics: Sequence[str]) -> list[int]:
    return sorted({int(m.split("@", 1)[1]) for m in metrics if "@" in m})


def protocol_of(metrics: Mapping[str, Any], config: Any, part: str) -> dict[str, Any]:
    """The protocol of one run as a report states and compares it."""
    rep = metrics.get(part) or {}
    proto = rep.get("protocol", {})
    split = {
        k: v
        for k, v in (
            proto.get("data_split") or metrics.get("data", {}).get("split_protocol") or {}
        ).items()
        if k not in ("dropped", "counts") and not k.endswith("_iso")
    }
    data = config.data
    out: dict[str, Any] = {
        "dataset": data.dataset if data.dataset is not None else data.path,
        "fingerprint": metrics.get("data", {}).get("fingerprint"),
        "split": split,
        **{k: proto.get(k) for k in PROTOCOL_KEYS},
        "cutoffs": _cutoffs(proto.get("metrics", rep.get("metrics", {}))),
    }
    return out


def _protocol_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    from seqrec.experiment import flatten_dict

    fa, fb = flatten_dict(a), flatten_dict(b)
    return [
        k
        for k in dict.fromkeys([*fa, *fb])
        if json.dumps(fa.get(k), sort_keys=True) != json.dumps(fb.get(k), sort_keys=True)
    ]


def _load(paths: Sequence[Path], part: str | None) -> tuple[list[_Run], str]:
    from seqrec.experiment import RESOLVED_CONFIG, load_experiment, point_id

    raw = []
    for p in paths:
        metrics = json.loads((p / "metrics.json").read_text())
        cfg = load_experiment(p / RESOLVED_CONFIG)
        raw.append((p, cfg, metrics))
    if part is None:
        part = "test" if all("test" in m for _, _, m in raw) else "valid"
    missing = [str(p) for p, _, m in raw if part not in m]
    if missing:
        raise DataError(f"runs without a {part!r} evaluation: {', '.join(missing)}")
    runs = [_Run(p, cfg, m, point_id(cfg), protocol_of(m, cfg, part)) for p, cfg, m in raw]
    return runs, part


# ------------------------------------------------------------------------------ table
def _label(values: Mapping[str, Any]) -> str:
    return (
        ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in values.items() if v is not None)
        or "defaults"
    )


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


@dataclass
class _Point:
    point: str
    runs: list[_Run]
    values: dict[str, Any]
    model: str
    stats: dict[str, dict[str, Any]]
    seconds: dict[str, Any]
    protocol: int = 0

    @property
    def label(self) -> str:
        if self.values.get("variant"):  # a named variant ([search.variants]) is its label
            return str(self.values["variant"])
        return _label(self.values) if self.values else self.model


def _points(runs: Sequence[_Run], keys: Sequence[str], part: str) -> list[_Point]:
    from seqrec.experiment import flatten_dict, seed_stats

    groups: dict[str, list[_Run]] = {}
    for r in runs:
        groups.setdefault(r.point, []).append(r)
    out = []
    for pid, rs in groups.items():
        flat = flatten_dict(rs[0].config.to_dict())
        names: list[str] = []
        for r in rs:
            names += [m for m in r.metrics[part]["metrics"] if m not in names]
        stats = {m: seed_stats([r.metrics[part]["metrics"].get(m) for r in rs]) for m in names}
        secs = seed_stats([r.metrics.get("train", {}).get("seconds") for r in rs])
        out.append(
            _Point(pid, rs, {k: flat.get(k) for k in keys}, rs[0].config.model.name, stats, secs)
        )
    return out


def _fmt_stat(s: Mapping[str, Any], ci: bool = False) -> str:
    if s.get("mean") is None:
        return "-"
    text = f"{s['mean']:.4f}"
    if s.get("std") is not None:
        text += f" ± {s['std']:.4f}"
        if ci:
            text += f" [{s['ci_low']:.4f}, {s['ci_high']:.4f}]"
    return text


def _table(
    points: Sequence[_Point], keys: Sequence[str], metric: str, mixed: bool
) -> tuple[list[str], list[list[str]]]:
    names: list[str] = []
    for p in points:
        names += [m for m in p.stats if m not in names]
    names = [metric, *[m for m in names if m != metric]]
    headers = ["#", *(["protocol"] if mixed else []), "model", *keys, "seeds"]
    headers += [f"{metric} (95% CI)", *names[1:], "train s"]
    rows = []
    for i, p in enumerate(points, 1):
        row = [str(i), *([str(p.protocol + 1)] if mixed else []), p.model]
        row += [_short(p.values[k]) for k in keys]
        row += [str(len(p.runs)), _fmt_stat(p.stats.get(metric, {}), ci=True)]
        row += [_fmt_stat(p.stats.get(m, {})) for m in names[1:]]
        s = p.seconds
        row.append("-" if s["mean"] is None else f"{s['mean']:.1f}")
        rows.append(row)
    return headers, rows


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |"]
    lines.append(
        "|"
        + "|".join(
            "---" if i < 1 else "---:" if i >= len(headers) - 4 else "---"
            for i in range(len(headers))
        )
        + "|"
    )
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ------------------------------------------------------------------------------ plots
def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            "seqrec report draws its plots with matplotlib: pip install 'seqrec[report]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _spans_decades(values: Sequence[float], ratio: float = 100.0) -> bool:
    """Whether the positive ``values`` span ``ratio`` or more (then a log axis reads better);
    parameter axes use 10 (learning rates, sizes), measured ones 100."""
    v = [x for x in values if x is not None]
    return len(v) >= 2 and min(v) > 0 and max(v) / min(v) >= ratio


def _natural(text: str) -> tuple[Any, ...]:
    """Sort key: numbers inside labels by value (``[8]`` before ``[16]``)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return path


def _plot_learning_curves(points: Sequence[_Point], valid_metric: str, path: Path) -> Path | None:
    plt = _plt()
    runs = [(p, r) for p in points for r in p.runs if r.metrics.get("history")]
    if not runs:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    cmap = plt.get_cmap("tab10" if len(points) <= 10 else "viridis")
    losses: list[float] = []
    for p, r in runs:
        hist = r.metrics["history"]
        color = (
            cmap(points.index(p) % 10)
            if len(points) <= 10
            else cmap(points.index(p) / max(1, len(points) - 1))
        )
        ep = [h["epoch"] for h in hist]
        loss = [h["loss"] for h in hist]
        losses += [x for x in loss if x is not None]
        first = r is p.runs[0]
        name = f"{p.model}: {p.label}" + (f" ({len(p.runs)} seeds)" if len(p.runs) > 1 else "")
        label = name if first and points.index(p) < MAX_LEGEND else None
        ax1.plot(ep, loss, marker="o", ms=3, color=color, label=label, alpha=0.85)
        val = [(h["epoch"], (h.get("valid") or {}).get(valid_metric)) for h in hist]
        val = [(e, v) for e, v in val if v is not None]
        if val:
            ax2.plot(*zip(*val, strict=True), marker="o", ms=3, color=color, alpha=0.85)
    ax1.set(
        title="Training loss per epoch", xlabel="epoch", ylabel="training loss (mean per batch)"
    )
    ax2.set(
        title=f"Validation {valid_metric} per epoch",
        xlabel="epoch",
        ylabel=f"{valid_metric} on valid",
    )
    if _spans_decades(losses):
        ax1.set_yscale("log")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = ax1.get_legend_handles_labels()
    extra = len(points) - MAX_LEGEND
    if extra > 0:
        labels[-1] += f"  (+{extra} more points, not named)"
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(3, max(1, len(labels))),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return _save(fig, path)


def _bars_note(points: Sequence[_Point], what: str) -> str:
    if max((len(p.runs) for p in points), default=1) > 1:
        return f"({what}; bars: ± std over seeds)"
    return f"({what}; one seed each: no error bars)"


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


MAX_LINE_VALUES = 6
"""Up to this many values of one point each, the metric-against-key plot joins them by a
line (a sweep); more are drawn as a scatter."""


def _plot_metric_vs(points: Sequence[_Point], key: str, metric: str, part: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    points = [p for p in points if p.values.get(key) is not None]  # runs of other models
    xs_raw = [p.values[key] for p in points]
    numeric = _numeric(xs_raw)
    if numeric:
        xs = [float(v) for v in xs_raw]
        cats: list[str] = []
    else:
        cats = list(dict.fromkeys(_short(v) for v in xs_raw))
        if key != "variant":  # named variants keep the table's order (best first)
            cats.sort(key=_natural)
        xs = [float(cats.index(_short(v))) for v in xs_raw]
    # points sharing an x are spread a little so that their error bars do not overlap
    same: dict[float, int] = {}
    offsets = []
    for x in xs:
        offsets.append(same.get(x, 0))
        same[x] = same.get(x, 0) + 1
    log = numeric and _spans_decades(xs, 10.0)
    means = [p.stats.get(metric, {}).get("mean") for p in points]
    stds = [p.stats.get(metric, {}).get("std") or 0.0 for p in points]
    drawn: list[tuple[float, float, float]] = []  # (value, shown x, mean)
    for x, off, m, sd in zip(xs, offsets, means, stds, strict=True):
        n, shown = same[x], x
        if n > 1:  # spread the points of one value so that their error bars do not overlap
            width = 0.3 if not numeric else (0.06 if log else 0.015 * (max(xs) - min(xs) or 1))
            shift = (off - (n - 1) / 2) * width / max(1, n - 1) * 2
            shown = x * (10**shift) if log else x + shift
        if m is not None:
            drawn.append((x, shown, m))
            ax.errorbar(shown, m, yerr=sd, fmt="o", color="tab:blue", ecolor="tab:gray", capsize=3)
    best: dict[float, tuple[float, float]] = {}
    for x, shown, m in drawn:
        if x not in best or m > best[x][1]:
            best[x] = (shown, m)
    line = [best[x] for x in sorted(best)]
    # categories have no order to draw a line along; many values of one point each (a
    # random or Optuna search) are a scatter, which a line would turn into a false trend
    sweep = len(best) < len(drawn) or len(best) <= MAX_LINE_VALUES
    if len(line) > 1 and numeric and sweep:
        ax.plot(*zip(*line, strict=True), color="tab:orange", lw=1.5, label="best point per value")
        ax.legend(loc="best", fontsize=8)
    if log:
        ax.set_xscale("log")
        values = sorted(set(xs))
        if len(values) <= 10:  # tick the values tried, as plain numbers (no 3x10^0 clutter)
            ax.set_xticks(values, [_short(int(v) if v.is_integer() else v) for v in values])
            ax.xaxis.set_minor_locator(_plt().NullLocator())
    if cats:
        ax.set_xticks(range(len(cats)), cats, rotation=20 if max(len(c) for c in cats) > 8 else 0)
        ax.set_xlim(-0.5, len(cats) - 0.5)
    ax.set(
        title=f"{part} {metric} against {key}\n{_bars_note(points, 'one marker per point')}",
        xlabel=key + (" (log scale)" if log else ""),
        ylabel=f"{part} {metric}",
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _plot_bars(points: Sequence[_Point], metric: str, part: str, path: Path, top: int = 20) -> Path:
    plt = _plt()
    shown = [p for p in points if p.stats.get(metric, {}).get("mean") is not None][:top]
    fig, ax = plt.subplots(figsize=(8, max(3.0, 1.2 + 0.38 * len(shown))))
    models = list(dict.fromkeys(p.model for p in shown))
    cmap = plt.get_cmap("tab10")
    ys = list(range(len(shown)))[::-1]
    for y, p in zip(ys, shown, strict=True):
        st = p.stats[metric]
        ax.barh(
            y,
            st["mean"],
            xerr=st.get("std") or None,  # one seed: no (zero-width) error bar
            color=cmap(models.index(p.model) % 10),
            capsize=3,
            alpha=0.9,
        )
    labels = [f"{p.model}: {p.label}" if p.values else p.model for p in shown]
    ax.set_yticks(ys, [lab if len(lab) <= 60 else lab[:57] + "..." for lab in labels], fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i % 10)) for i in range(len(models))]
    ax.legend(
        handles,
        models,
        title="model",
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        fontsize=8,
        frameon=False,
    )
    more = f" (best {len(shown)} of {len(points)})" if len(points) > len(shown) else ""
    ax.set(
        title=f"{part} {metric} by model and setting, best first{more}\n"
        + _bars_note(shown, "one bar per point"),
        xlabel=f"{part} {metric}",
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


MAX_TIME_LABELS = 12
"""Up to this many points, the accuracy-against-time plot names each point."""


def _plot_time(points: Sequence[_Point], metric: str, part: str, path: Path) -> Path | None:
    plt = _plt()
    pts = [
        p
        for p in points
        if p.seconds["mean"] is not None and p.stats.get(metric, {}).get("mean") is not None
    ]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.6))
    models = list(dict.fromkeys(p.model for p in pts))
    cmap = plt.get_cmap("tab10")
    for i, m in enumerate(models):
        mine = [p for p in pts if p.model == m]
        ax.errorbar(
            [max(p.seconds["mean"], 1e-3) for p in mine],
            [p.stats[metric]["mean"] for p in mine],
            xerr=[p.seconds.get("std") or 0.0 for p in mine],
            yerr=[p.stats[metric].get("std") or 0.0 for p in mine],
            fmt="o",
            color=cmap(i % 10),
            capsize=3,
            label=m,
            alpha=0.85,
        )
    if len(pts) <= MAX_TIME_LABELS:  # few points: name each one beside its marker
        for p in pts:
            if p.values:
                ax.annotate(
                    p.label if len(p.label) <= 30 else p.label[:27] + "...",
                    (max(p.seconds["mean"], 1e-3), p.stats[metric]["mean"]),
                    xytext=(5, 4),
                    textcoords="offset points",
                    fontsize=7,
                    color="0.25",
                )
    secs = [p.seconds["mean"] for p in pts]
    if _spans_decades(secs):
        ax.set_xscale("log")
    ax.set(
        title=f"{part} {metric} against training time\n{_bars_note(pts, 'one marker per point')}",
        xlabel="training time per run (seconds" + (", log scale)" if _spans_decades(secs) else ")"),
        ylabel=f"{part} {metric}",
    )
    ax.legend(
        title="model", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------------------ build
def _varied(configs: Sequence[Any]) -> list[str]:
    """Dotted keys with more than one value among the configs that have them (a key of
    one model only is varied if it varies among that model's runs); ``name``, ``seed`` and
    ``model.name`` (the model column) are left out."""
    from seqrec.experiment import flatten_dict

    flats = [flatten_dict(c.to_dict()) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    out = []
    for k in keys:
        if k in ("name", "seed", "model.name"):
            continue
        values = {json.dumps(f[k], sort_keys=True) for f in flats if f.get(k) is not None}
        if len(values) > 1:
            out.append(k)
    return out


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_")


def _protocol_lines(proto: Mapping[str, Any]) -> list[tuple[str, str]]:
    fp = proto.get("fingerprint") or {}
    split = proto.get("split") or {}
    method = split.get("method", "?")
    params = ", ".join(
        f"{k}={_short(v)}"
        for k, v in split.items()
        if k != "method"
        and not isinstance(v, dict)
        and k not in ("t_max", "test_cutoff", "valid_cutoff")
    )
    return [
        ("dataset", str(proto.get("dataset"))),
        ("data fingerprint", ", ".join(f"{k} {v}" for k, v in fp.items() if v) or "-"),
        ("task", str(proto.get("task"))),
        ("split", f"{method} ({params})" if params else method),
        (
            "candidates",
            f"{proto.get('candidates')}"
            + (" (sampled: not comparable to full ranking)" if proto.get("sampled") else ""),
        ),
        ("ties", str(proto.get("ties"))),
        (
            "masking",
            f"exclude_seen={proto.get('exclude_seen')}, padding masked={proto.get('padding_masked')}",
        ),
        ("cutoffs", ", ".join(map(str, proto.get("cutoffs") or [])) or "-"),
    ]


def _mixed_warning(runs: Sequence[_Run], protocols: Sequence[Mapping[str, Any]]) -> str:
    """The warning for runs under several protocols ("" for one): what each protocol
    differs in from the first, with a run of each."""
    if len(protocols) < 2:
        return ""
    first = next(r for r in runs if r.protocol == protocols[0])
    parts = []
    for i, proto in enumerate(protocols[1:], start=2):
        other = next(r for r in runs if r.protocol == proto)
        diff = _protocol_difference(protocols[0], proto)
        parts.append(
            f"protocol {i} ({other.path}) differs from protocol 1 ({first.path}) in "
            f"{', '.join(diff)}"
        )
    return (
        f"the runs were evaluated under {len(protocols)} different protocols: "
        + "; ".join(parts)
        + ". Their numbers are not comparable: the report has one table per protocol "
        "(significance tests only within one)"
    )


def _compared(points: Sequence[_Point], cap: int | None = None) -> list[_Point]:
    """The points the best one (``points[0]``) is tested against: the best point of each
    other model, then the next best points, at most ``cap`` (:data:`MAX_SIGNIFICANCE`), in
    table order."""
    cap = MAX_SIGNIFICANCE if cap is None else cap
    others = list(points[1:])
    first_of: dict[str, _Point] = {}
    for p in others:
        if p.model != points[0].model:
            first_of.setdefault(p.model, p)
    chosen = list(first_of.values())[:cap]
    chosen += [p for p in others if p not in chosen][: cap - len(chosen)]
    return sorted(chosen, key=others.index)


def _fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "-"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _in_keys(p: _Point, keys: Sequence[str]) -> _Point:
    """``p`` with only the parameters ``keys`` (those varied within its protocol group)."""
    return replace(p, values={k: p.values.get(k) for k in keys})


def _significance(
    points: Sequence[_Point], metric: str, part: str, cache: dict[Path, Any]
) -> tuple[list[str], list[list[str]], list[str], list[PairedTest]]:
    """The significance table of one protocol group: headers, rows, notes, the tests."""
    from seqrec.exceptions import SeqrecError

    if len(points) < 2:
        return [], [], ["One point only: nothing to compare."], []
    if metric in NOT_PER_QUERY:
        note = (
            f"{metric} pools over all queries and has no per-query value: no paired test "
            "(choose a per-query main metric with --metric, e.g. recall@10; seqrec compare "
            "also tests f1_user, the per-user F1 of the predicted set)."
        )
        return [], [], [note], []
    best = points[0]
    shown = _compared(points)
    name = f"{best.model}: {best.label}" if best.values else best.model
    notes = [
        f"The best point (#1, {name}, {len(best.runs)} seed(s)) against "
        + (
            "every other point"
            if len(shown) == len(points) - 1
            else f"the best point of each other model and the next best points "
            f"({len(shown)} of {len(points) - 1})"
        )
        + f", on {part} {metric}. Difference = #1 minus the row, over the queries of {part} "
        "(aligned by query; a point's seeds are averaged per query first); 95% CI: paired "
        f"bootstrap over queries ({SIGNIFICANCE_BOOT} resamples, seed 0); p: two-sided "
        "Wilcoxon signed-rank test over the queries whose values differ."
    ]
    with_point = any(p.values for p in shown)
    headers = ["#", "model", *(["point"] if with_point else []), "seeds"]
    headers += [f"{metric} difference", "95% CI", "p", "queries"]
    rows: list[list[str]] = []
    tests: list[PairedTest] = []
    for p in shown:
        label = [p.label if p.values else "-"] if with_point else []
        head = [str(points.index(p) + 1), p.model, *label, str(len(p.runs))]
        try:
            t = paired_test(
                [r.path for r in best.runs],
                [r.path for r in p.runs],
                metric=metric,
                part=part,
                n_boot=SIGNIFICANCE_BOOT,
                seed=0,
                _cache=cache,
            )
        except SeqrecError as e:  # e.g. a run written before per-query results
            rows.append([*head, "-", "-", "-", "-"])
            notes.append(f"#{points.index(p) + 1}: {e}")
            continue
        tests.append(t)
        rows.append(
            [
                *head,
                f"{t.difference:+.4f}",
                f"[{t.ci_low:+.4f}, {t.ci_high:+.4f}]",
                _fmt_p(t.p_value),
                str(t.n),
            ]
        )
    return headers, rows, notes, tests


def build(
    runs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    metric: str | None = None,
    part: str | None = None,
    allow_mixed: bool = False,
    title: str | None = None,
) -> ReportResult:
    """Write a report over the finished runs under ``runs`` into ``out_dir``.

    Parameters
    ----------
    runs
        Run directories, or grid directories holding them (failed and unfinished runs are
        skipped).
    out_dir
        Where ``report.md``, ``report.html`` and the PNGs go (created).
    metric
        The main metric (sorting, plots); default: the first metric of the first run.
    part
        ``"test"`` (default when every run has it) or ``"valid"``.
    allow_mixed
        No effect (kept for older callers): runs under different protocols are always
        reported, with a warning naming the differences and one section per protocol.
    title
        The report's title.

    Raises
    ------
    DataError
        No finished run, or a run without the part.
    ConfigError
        An unknown metric, matplotlib missing.

    Examples
    --------
    >>> import seqrec.report  # doctest: +SKIP
    >>> seqrec.report.build(["runs/grid"], "reports/grid")  # doctest: +SKIP
    """
    plt = _plt()
    paths = find_runs(runs)
    loaded, part = _load(paths, part)
    protocols: list[dict[str, Any]] = []
    for r in loaded:
        if r.protocol not in protocols:
            protocols.append(r.protocol)
    warned = _mixed_warning(loaded, protocols)
    if warned:
        logger.warning("%s", warned)
    del allow_mixed  # mixed protocols are always reported now, one section each
    keys = _varied([r.config for r in loaded])
    points = _points(loaded, keys, part)
    for p in points:
        p.protocol = protocols.index(p.runs[0].protocol)
    all_metrics = list(dict.fromkeys(m for p in points for m in p.stats))
    metric = metric or all_metrics[0]
    if metric not in all_metrics:
        raise ConfigError(
            f"metric {metric!r} is not in the runs; they have {', '.join(all_metrics)}"
        )
    order = [metric, *[m for m in all_metrics if m != metric]]

    def rank(p: _Point) -> tuple[float, ...]:  # the main metric, then the others
        vals = [p.stats.get(m, {}).get("mean") for m in order]
        return tuple(-math.inf if v is None else v for v in vals)

    points.sort(key=rank, reverse=True)  # best first
    valid_metric = loaded[0].config.train.valid_metric

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, Path]] = []
    img = _plot_learning_curves(points, valid_metric, out / "learning_curves.png")
    if img:
        images.append(("Learning curves", img))
    # named variants change one thing each: a plot against one of their keys would mix
    # the other changes, so they get one plot against the variant
    for k in ["variant"] if "variant" in keys else keys:
        images.append(
            (
                f"{metric} against {k}",
                _plot_metric_vs(points, k, metric, part, out / f"metric_vs_{_slug(k)}.png"),
            )
        )
    images.append(("Models and settings", _plot_bars(points, metric, part, out / "models.png")))
    img = _plot_time(points, metric, part, out / "accuracy_vs_time.png")
    if img:
        images.append(("Accuracy against training time", img))
    del plt

    title = title or f"seqrec report: {len(points)} point(s), {len(loaded)} run(s)"
    n_seeds = sorted({len(p.runs) for p in points})
    note = (
        f"Sorted by {part} {metric} (mean over seeds), best first. Cells are mean ± std over "
        f"the seeds of a point (sample std); the main metric also shows the 95% t-interval of "
        f"the mean. Seeds per point: {', '.join(map(str, n_seeds))}."
    )
    md = [f"# {title}", ""]
    hp = [f"<h1>{html.escape(title)}</h1>"]
    if warned:
        md += [f"**Warning**: {warned}.", ""]
        hp.append(f"<p><b>Warning</b>: {html.escape(warned)}.</p>")
    tests: list[PairedTest] = []
    cache: dict[Path, Any] = {}  # per-query frames, read once per run
    mixed = len(protocols) > 1
    for i, proto in enumerate(protocols):
        group = [p for p in points if p.protocol == i]
        n_runs = sum(len(p.runs) for p in group)
        if mixed:  # the parameters varied within this group only
            inner = set(_varied([r.config for p in group for r in p.runs]))
            gkeys = [k for k in keys if k in inner]
            group = [_in_keys(p, gkeys) for p in group]
        else:
            gkeys = list(keys)
        head = "Protocol" if not mixed else f"Protocol {i + 1} ({n_runs} run(s))"
        sub, lvl = ("", "##") if not mixed else (f" under protocol {i + 1}", "###")
        lines = _protocol_lines(proto)
        md += [f"## {head}", ""] + [f"- **{k}**: {v}" for k, v in lines] + [""]
        hp.append(
            f"<h2>{html.escape(head)}</h2><ul>"
            + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in lines)
            + "</ul>"
        )
        headers, rows = _table(group, gkeys, metric, False)
        h = "h2" if not mixed else "h3"
        md += [f"{lvl} Runs{sub}", "", note, "", _markdown_table(headers, rows), ""]
        hp += [f"<{h}>Runs{sub}</{h}>", f"<p>{html.escape(note)}</p>", _html_table(headers, rows)]
        s_headers, s_rows, s_notes, s_tests = _significance(group, metric, part, cache)
        tests += s_tests
        md += [f"{lvl} Significance{sub}", ""] + [n + "\n" for n in s_notes]
        hp.append(f"<{h}>Significance{sub}</{h}>")
        hp += [f"<p>{html.escape(n)}</p>" for n in s_notes]
        if s_rows:
            md += [_markdown_table(s_headers, s_rows), ""]
            hp.append(_html_table(s_headers, s_rows))
    md += ["## Plots", ""]
    hp.append("<h2>Plots</h2>")
    if mixed:
        md += ["The plots draw the runs of every protocol together.", ""]
        hp.append("<p>The plots draw the runs of every protocol together.</p>")
    for caption, path in images:
        md += [f"### {caption}", "", f"![{caption}]({path.name})", ""]
        data = base64.b64encode(path.read_bytes()).decode()
        hp.append(
            f'<h3>{html.escape(caption)}</h3><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        )
    for heading, listed in (
        ("Failed runs (not in the table)", failed_runs(runs)),
        ("Pruned Optuna trials (not in the table)", pruned_runs(runs)),
    ):
        if not listed:
            continue
        md += [f"## {heading}", ""]
        md += [f"- `{d}`: {e}" for d, e in listed.items()] + [""]
        hp.append(
            f"<h2>{heading}</h2><ul>"
            + "".join(
                f"<li><code>{html.escape(str(d))}</code>: {html.escape(e)}</li>"
                for d, e in listed.items()
            )
            + "</ul>"
        )
    md += ["## Runs included", ""] + [f"- `{r.path}`" for r in loaded] + [""]
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "th{background:#f3f3f3}td{text-align:right}td:nth-child(-n+2){text-align:left}img{max-width:100%}"
    )
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>{''.join(hp)}</body></html>\n"
    )
    from seqrec.experiment.files import write_text_atomic

    write_text_atomic(out / "report.md", "\n".join(md))
    write_text_atomic(out / "report.html", page)
    return ReportResult(
        out_dir=out,
        markdown=out / "report.md",
        html=out / "report.html",
        images=[p for _, p in images],
        n_runs=len(loaded),
        n_points=len(points),
        metric=metric,
        part=part,
        protocols=protocols,
        significance=tests,
        warnings=[warned] if warned else [],
    )


__all__ = [
    "MAX_SIGNIFICANCE",
    "PROTOCOL_KEYS",
    "PairedTest",
    "ReportResult",
    "build",
    "failed_runs",
    "pruned_runs",
    "find_runs",
    "paired_test",
    "protocol_of",
]
