"""Loggers behind the Dashboard: TensorBoard event files and an offline
Weights & Biases run hold every metrics line, `puffer train --logger` wires
them through PPO, and a wrong name or a missing package says what to do."""
import json
import struct
import sys
from pathlib import Path

import pytest

from puffer.cli import main
from puffer.trainer.dashboard import Dashboard

LINES = [{"update": u, "global_step": 1000 * u, "sps": 5000.0 + u, "episode_return": 2.0 * u,
          "score": None, "policy_loss": -0.1 / u, "env": 0.25} for u in (1, 2, 3)]


def write_lines(run_dir, logger, lines=LINES):
    dashboard = Dashboard("test", run_dir / "metrics.jsonl", live=False, logger=logger, config={"train": {"seed": 7}})
    for line in lines:
        dashboard.write(line)
    dashboard.close()


def tensorboard_scalars(log_dir):
    """{tag: [(step, value), ...]} of the TensorBoard events in `log_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events_hold_every_line(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra: pip install 'puffer[tensorboard]'")
    write_lines(tmp_path, "tensorboard")
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    # Tagged by the dashboard's sections; global_step is the x axis, None is left out.
    assert set(scalars) == {"update", "progress/sps", "episodes/episode_return", "losses/policy_loss", "time/env"}
    assert scalars["episodes/episode_return"] == [(1000, 2.0), (2000, 4.0), (3000, 6.0)]
    assert scalars["progress/sps"][-1] == (3000, 5003.0)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3  # still written


def test_train_with_logger_flag(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="the tensorboard extra: pip install 'puffer[tensorboard]'")
    main(["train", "light_button", "--total-steps", "4096", "--vec.num_envs", "32", "--train.torch_threads", "1",
          "--run-dir", str(tmp_path), "--logger", "tensorboard"])
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((tmp_path / "config.json").read_text())["train"]["logger"] == "tensorboard"
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    for tag, key in (("episodes/score", "score"), ("losses/value_loss", "value_loss"), ("progress/sps", "sps")):
        logged = [(line["global_step"], line[key]) for line in lines if line.get(key) is not None]
        assert [step for step, _ in scalars[tag]] == [step for step, _ in logged] and len(logged) > 1
        assert [value for _, value in scalars[tag]] == pytest.approx([value for _, value in logged])


def wandb_history(run_file):
    """The history rows of a .wandb file: a LevelDB-style log (a 7-byte file
    header, then 32 KiB blocks of records, each a 7-byte header of CRC,
    length and fragment kind and its bytes) of protobuf Records."""
    from wandb.proto.wandb_internal_pb2 import Record
    data, block = Path(run_file).read_bytes(), 32768
    rows, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last fragment of one
            record = Record()
            record.ParseFromString(pending)
            pending = b""
            if record.HasField("history"):
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def test_wandb_offline_run_holds_the_history(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="the wandb extra: pip install 'puffer[wandb]'")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline must be the default
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any attempt to reach a server would fail
    write_lines(tmp_path, "wandb")
    wandb.teardown()  # waits for wandb's service process to write the run out (as at exit)
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    rows = wandb_history(next(run.glob("run-*.wandb")))
    assert [row["_step"] for row in rows] == [1000, 2000, 3000]
    assert [row["episodes/episode_return"] for row in rows] == [2.0, 4.0, 6.0]
    assert all("episodes/score" not in row for row in rows)
    assert rows[-1]["losses/policy_loss"] == pytest.approx(-0.1 / 3)


def test_unknown_logger_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown logger 'tensorbord'; choose one of: none, tensorboard, wandb"):
        write_lines(tmp_path, "tensorbord")
    with pytest.raises(SystemExit, match="train.logger.*must be none, tensorboard or wandb, got 'csv'"):
        main(["train", "light_button", "--total-steps", "1", "--run-dir", str(tmp_path), "--logger", "csv"])


@pytest.mark.parametrize("package", ["tensorboard", "wandb"])
def test_missing_package_names_the_pip_command(tmp_path, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    with pytest.raises(ImportError, match=f"pip install {package} \\(or pip install 'puffer\\[{package}\\]'\\)"):
        write_lines(tmp_path, package)
