"""`puffer plot RUN_DIR ...`: the learning curves of runs, read from their
metrics.jsonl, as one PNG of panels against the global step or, with
`--x wall_time`, against wall-clock time: by steps, a trainer 10x slower per
step than another can look as good. Also the Pareto front of `puffer sweep`."""
import json
import math
from pathlib import Path

# Panel title -> the metrics it draws (a panel no run has data for is left out).
PANELS = {
    "episode return": ("episode_return", "mean_return_100"),
    "score": ("score",),
    "policy loss": ("policy_loss",),
    "value loss": ("value_loss",),
    "entropy": ("entropy",),
    "steps per second": ("sps",),
}
# What the curves can be drawn against: the metric, and the axis label.
X_AXES = {"global_step": "global step", "wall_time": "wall time (s)"}
COLUMNS = 3
PANEL_SIZE = (4.5, 3.5)  # inches, at 100 dpi


def read_metrics(run_dir):
    """The metrics lines of a run directory (or of a metrics.jsonl file)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl at {path}: is {run_dir} a run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curves(records, x="global_step"):
    """{panel: {metric: (xs, values)}} of the metrics the records hold,
    against metric `x` (or the line number, for records without it)."""
    if x not in X_AXES:
        raise ValueError(f"unknown x axis {x!r}; choose from {', '.join(X_AXES)}")
    panels = {}
    for title, keys in PANELS.items():
        for key in keys:
            points = [(r.get(x, i), r[key]) for i, r in enumerate(records) if r.get(key) is not None]
            if points:
                panels.setdefault(title, {})[key] = tuple(zip(*points))
    return panels


def figure_class():
    """matplotlib's Figure, or an ImportError that says how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or pip install 'puffer[plot]')") from None
    return Figure


def plot_runs(run_dirs, out=None, x="global_step"):
    """Draws the curves of `run_dirs` (one color per run) against metric `x`
    (X_AXES) into the PNG `out` (default: curves.png in the first run
    directory); returns its path."""
    Figure = figure_class()
    from matplotlib.ticker import EngFormatter
    runs = {Path(run_dir).name: curves(read_metrics(run_dir), x) for run_dir in run_dirs}
    titles = [title for title in PANELS if any(title in panels for panels in runs.values())]
    if not titles:
        raise ValueError(f"no metrics to plot in {', '.join(map(str, run_dirs))}; "
                         f"plotted are: {', '.join(k for keys in PANELS.values() for k in keys)}")
    rows, columns = -(-len(titles) // COLUMNS), min(len(titles), COLUMNS)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), dpi=100, layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax, title in zip(axes, titles):
        for index, (name, panels) in enumerate(runs.items()):
            # A color per run, a line style per metric; labels only where they tell lines apart.
            for style, (key, (xs, values)) in zip(("-", ":"), panels.get(title, {}).items()):
                label = [name] * (len(runs) > 1) + [key] * (len(PANELS[title]) > 1)
                ax.plot(xs, values, style, color=f"C{index % 10}", label=" ".join(label) or None)
        ax.set(title=title, xlabel=X_AXES[x])
        if x == "global_step":
            ax.xaxis.set_major_formatter(EngFormatter())  # 20 k, not 20000
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    for ax in axes[len(titles):]:  # the unused cells of the last row
        ax.set_visible(False)
    out = Path(out) if out else Path(run_dirs[0]) / "curves.png"
    figure.savefig(out)
    return out


def plot_front(trials, front, out, title, score_label, time_label):
    """A sweep's completed trials as points of time to target against score,
    its Pareto front joined and numbered, into the PNG `out`. Trials that
    never reached the target stand at the right edge."""
    figure = figure_class()(figsize=(7, 5), dpi=100, layout="constrained")
    ax = figure.subplots()
    finite = [t.values[1] for t in trials if math.isfinite(t.values[1])]
    never = 1.1 * max(finite) if finite else 1.0

    def point(t):
        return (t.values[1] if math.isfinite(t.values[1]) else never), t.values[0]
    ax.scatter(*zip(*map(point, trials)), color="0.6", label="trials")
    front_points = [point(t) for t in front]
    ax.step(*zip(*front_points), "o-", where="post", color="C3", label="Pareto front")
    for t, (x, y) in zip(front, front_points):
        ax.annotate(str(t.number), (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    if len(finite) < len(trials):
        ax.axvline(never, color="0.8", linestyle=":", label="target not reached")
    ax.set(title=title, xlabel=time_label, ylabel=score_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    figure.savefig(out)
    return out
