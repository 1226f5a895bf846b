"""What a run shows and records: a live terminal dashboard (rich) when the
output is a terminal, plain log lines otherwise, every line of metrics
appended to the run's metrics.jsonl and, with a logger, sent to TensorBoard
or Weights & Biases too."""
import importlib
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

SECTIONS = {
    "progress": ["global_step", "wall_time", "sps", "mfu"],
    "episodes": ["episode_return", "episode_length", "score", "mean_return_100", "episodes"],
    "losses": ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance"],
    "time": ["env", "inference", "copies", "learning"],
}


def format_value(value):
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


LOGGERS = ("none", "tensorboard", "wandb")


class Dashboard:
    def __init__(self, title, metrics_path, live=None, sections=None, logger="none", config=None):
        """`sections`: {section: [metric keys]} to show, default PPO's SECTIONS;
        a section named "time" shows shares of the wall time as percentages.
        `logger` (one of LOGGERS) also gets every metrics line, its numbers
        tagged "section/key" and stepped by global_step; it writes beside
        metrics.jsonl. `config`: the run's config, which wandb records."""
        self.title = title
        self.sections = SECTIONS if sections is None else sections
        self.logger = make_logger(logger, Path(metrics_path).parent, config)
        self.tags = {key: f"{section}/{key}" for section, keys in self.sections.items() for key in keys}
        self.lines = 0
        self.metrics_file = open(metrics_path, "a")
        self.live = sys.stdout.isatty() if live is None else live
        self.console = Console()
        self.display = Live(console=self.console, refresh_per_second=4, transient=False) if self.live else None
        if self.display:
            self.display.start()

    def write(self, metrics):
        """Appends one line to metrics.jsonl (and sends it to the logger)."""
        self.metrics_file.write(json.dumps(metrics) + "\n")
        self.metrics_file.flush()
        self.lines += 1
        if self.logger:
            scalars = {self.tags.get(key, key): value for key, value in metrics.items()
                       if key != "global_step" and isinstance(value, (int, float))}
            self.logger.log(scalars, metrics.get("global_step", self.lines))

    def show(self, metrics):
        """Refreshes the dashboard, or prints a plain line when not on a terminal."""
        if not metrics:
            return
        if self.display:
            self.display.update(self.table(metrics))
        else:
            shown = [k for section, keys in self.sections.items() if section != "time" for k in keys if k in metrics]
            print(" ".join(f"{k}={format_value(metrics[k])}" for k in shown), flush=True)

    def table(self, metrics):
        table = Table(title=self.title, show_header=False, expand=False)
        for section, keys in self.sections.items():
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
        if self.logger:
            self.logger.close()


def make_logger(name, run_dir, config):
    """The logger `name` writing into `run_dir`, or None for "none"."""
    if name not in LOGGERS:
        raise ValueError(f"unknown logger {name!r}; choose one of: {', '.join(LOGGERS)}")
    if name == "tensorboard":
        return TensorBoardLogger(run_dir / "tensorboard")
    if name == "wandb":
        return WandbLogger(run_dir, config)
    return None


def import_extra(package):
    """Imports an optional package, or raises an ImportError that says how to install it."""
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as error:
        if error.name != package:  # the package is there but broken: its own error says more
            raise
        raise ImportError(f"logger {package!r} needs the {package} package: pip install {package} "
                          f"(or pip install 'puffer[{package}]')") from None


class TensorBoardLogger:
    """Scalars as TensorBoard event files in `log_dir` (tensorboard --logdir RUN_DIR)."""

    def __init__(self, log_dir):
        import_extra("tensorboard")
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir, flush_secs=10)

    def log(self, scalars, step):
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)

    def close(self):
        self.writer.close()


class WandbLogger:
    """A Weights & Biases run in RUN_DIR/wandb. Offline unless WANDB_MODE says
    otherwise, so training needs no account or network; `wandb sync
    RUN_DIR/wandb/offline-run-*` uploads it later."""

    def __init__(self, run_dir, config):
        wandb = import_extra("wandb")
        # console="off": wandb would otherwise wrap stdout, under the live dashboard.
        self.run = wandb.init(project="puffer", name=run_dir.name, dir=run_dir, config=config,
                              mode=os.environ.get("WANDB_MODE", "offline"),
                              settings=wandb.Settings(console="off", quiet=True))

    def log(self, scalars, step):
        self.run.log(scalars, step=step)

    def close(self):
        self.run.finish()
