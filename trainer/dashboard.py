"""What a run shows and records: a live terminal dashboard (rich) when the
output is a terminal, plain log lines otherwise, and every line of metrics
appended to the run's metrics.jsonl."""
import json
import sys

from rich.console import Console
from rich.live import Live
from rich.table import Table

SECTIONS = {
    "progress": ["global_step", "wall_time", "sps"],
    "episodes": ["episode_return", "episode_length", "score", "mean_return_100", "episodes"],
    "losses": ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance"],
    "time": ["env", "inference", "copies", "learning"],
}


def format_value(value):
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


class Dashboard:
    def __init__(self, title, metrics_path, live=None):
        self.title = title
        self.metrics_file = open(metrics_path, "a")
        self.live = sys.stdout.isatty() if live is None else live
        self.console = Console()
        self.display = Live(console=self.console, refresh_per_second=4, transient=False) if self.live else None
        if self.display:
            self.display.start()

    def write(self, metrics):
        """Appends one line to metrics.jsonl."""
        self.metrics_file.write(json.dumps(metrics) + "\n")
        self.metrics_file.flush()

    def show(self, metrics):
        """Refreshes the dashboard, or prints a plain line when not on a terminal."""
        if not metrics:
            return
        if self.display:
            self.display.update(self.table(metrics))
        else:
            shown = [k for section, keys in SECTIONS.items() if section != "time" for k in keys if k in metrics]
            print(" ".join(f"{k}={format_value(metrics[k])}" for k in shown), flush=True)

    def table(self, metrics):
        table = Table(title=self.title, show_header=False, expand=False)
        for section, keys in SECTIONS.items():
            table.add_row(f"[bold]{section}", "")
            for key in keys:
                if metrics.get(key) is not None:
                    value = metrics[key]
                    if section == "time":
                        value = f"{100 * value:.0f}%"
                    table.add_row(f"  {key}", format_value(value))
        return table

    def close(self):
        if self.display:
            self.display.stop()
        self.metrics_file.close()
