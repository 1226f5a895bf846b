"""`puffer plot`: learning curves of runs' metrics.jsonl to a PNG, a panel
per kind of curve the runs hold."""
import json
import sys

import pytest

from puffer.cli import main
from puffer.config import load_config
from puffer.plot import PANELS, curves, plot_runs, read_metrics
from puffer.trainer.ppo import train

Image = pytest.importorskip("PIL.Image", reason="Pillow reads the PNG back")
pytest.importorskip("matplotlib", reason="the plot extra: pip install 'puffer[plot]'")


def write_run(run_dir, lines):
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


def test_a_ppo_run_gets_every_panel(tmp_path):
    config = load_config("light_button", {"train.total_steps": 4096, "vec.num_envs": 32, "train.torch_threads": 1})
    run_dir = train("light_button", config, tmp_path / "run", live=False)["run_dir"]
    panels = curves(read_metrics(run_dir))
    assert list(panels) == list(PANELS)  # PPO's metrics are the ones plotted
    steps, returns = panels["episode return"]["episode_return"]
    assert len(steps) > 1 and steps == tuple(sorted(steps))
    path = plot_runs([run_dir])
    assert path == tmp_path / "run" / "curves.png"
    assert Image.open(path).size == (1350, 700)  # 2 rows of 3 panels, 450 x 350 pixels each


def test_panels_follow_the_metrics(tmp_path):
    lines = [{"global_step": 100 * i, "sps": 1000.0 + i, "score": None if i < 2 else i / 10} for i in range(5)]
    run = write_run(tmp_path / "a", lines)
    panels = curves(read_metrics(run))
    assert list(panels) == ["score", "steps per second"]
    assert panels["score"]["score"] == ((200, 300, 400), (0.2, 0.3, 0.4))  # None is no point
    out = plot_runs([run], tmp_path / "out.png")
    assert Image.open(out).size == (900, 350)
    # Several runs share the panels; a metric with no global_step is plotted by line.
    other = write_run(tmp_path / "b", [{"sps": 5.0}, {"sps": 6.0}, {"entropy": 1.0}])
    assert curves(read_metrics(other))["steps per second"]["sps"] == ((0, 1), (5.0, 6.0))
    assert Image.open(plot_runs([run, other], tmp_path / "both.png")).size == (1350, 350)


def test_cli_and_bad_input(tmp_path, capsys, monkeypatch):
    run = write_run(tmp_path / "run", [{"global_step": 1, "sps": 1.0}, {"global_step": 2, "sps": 2.0}])
    main(["plot", str(run)])
    assert capsys.readouterr().out.strip() == f"wrote {run / 'curves.png'}"
    with pytest.raises(SystemExit, match="no metrics.jsonl at .*nowhere"):
        main(["plot", str(tmp_path / "nowhere")])
    with pytest.raises(ValueError, match="no metrics to plot in .*; plotted are: episode_return"):
        plot_runs([write_run(tmp_path / "empty", [{"update": 1}])])
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install matplotlib \(or pip install 'puffer\[plot\]'\)"):
        plot_runs([run])


def test_curves_against_wall_time(tmp_path, capsys):
    lines = [{"global_step": 100 * i, "wall_time": 0.5 * i, "sps": 200.0} for i in range(1, 4)]
    run = write_run(tmp_path / "run", lines)
    assert curves(read_metrics(run), "wall_time")["steps per second"]["sps"] == ((0.5, 1.0, 1.5), (200.0,) * 3)
    assert curves(read_metrics(run))["steps per second"]["sps"] == ((100, 200, 300), (200.0,) * 3)
    main(["plot", str(run), "--x", "wall_time", "--out", str(tmp_path / "time.png")])
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'time.png'}"
    assert Image.open(tmp_path / "time.png").size == (450, 350)
    with pytest.raises(ValueError, match="unknown x axis 'time'; choose from global_step, wall_time"):
        curves(read_metrics(run), "time")
    with pytest.raises(SystemExit):
        main(["plot", str(run), "--x", "time"])
    assert "invalid choice: 'time'" in capsys.readouterr().err
