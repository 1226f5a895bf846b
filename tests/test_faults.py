"""Faults of a real `puffer train` process: SIGKILL at random moments never
leaves a corrupt checkpoint and --resume carries on; Ctrl-C saves a final
checkpoint and exits cleanly; a multiprocessing worker that dies ends the run
with a clear error, not a deadlock."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from puffer.trainer.checkpoint import load_checkpoint

# Small and quick: light_button is solved within a few thousand steps.
TRAIN = [sys.executable, "-m", "puffer.cli", "train", "light_button", "--train.torch_threads", "1",
         "--vec.num_envs", "16", "--train.checkpoint_interval", "1"]


def default_sigint():
    # A shell without job control starts background jobs with SIGINT ignored, and
    # children inherit that; a terminal's foreground job, which this plays, has it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(run_dir, *args, total_steps=10_000_000):
    return subprocess.Popen([*TRAIN, "--run-dir", str(run_dir), "--total-steps", str(total_steps), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,  # its own process group, as a terminal's job
                            preexec_fn=default_sigint)


def wait_for(predicate, process, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"train exited early ({process.returncode}):\n{process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(0.05)


def updates_logged(run_dir):
    path = run_dir / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def test_sigkill_at_random_moments_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    rng = random.Random(os.getpid())
    saved_steps = 0
    for attempt in range(3):
        args = ["--resume", str(run_dir)] if attempt else []
        process = start(run_dir, *args)
        logged = updates_logged(run_dir)
        wait_for(lambda: updates_logged(run_dir) > logged, process)
        time.sleep(rng.uniform(0.0, 0.5))  # anywhere: mid-rollout, mid-update, mid-save
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        state = load_checkpoint(run_dir)  # never torn: the last complete one
        assert state["global_step"] >= saved_steps and state["update"] >= 1
        saved_steps = state["global_step"]
    total = saved_steps + 20_000
    logged = (run_dir / "metrics.jsonl").stat().st_size
    result = subprocess.run([*TRAIN, "--resume", str(run_dir), "--total-steps", str(total)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(run_dir / "metrics.jsonl") as f:
        f.seek(logged)
        records = [json.loads(line) for line in f]
    steps = [record["global_step"] for record in records]
    # The step count goes on from the checkpoint's, one rollout (16 envs x 16 steps) at a time.
    assert steps == list(range(saved_steps + 256, steps[-1] + 1, 256)) and steps[-1] >= total
    assert load_checkpoint(run_dir)["global_step"] == steps[-1]
    # And it has learned the task: the sampled policy presses right nearly
    # always (a random one almost never lasts an episode); one slip among
    # 16 episodes is no failure to learn.
    assert np.mean([record["score"] for record in records[-5:]]) >= 0.95


def test_ctrl_c_saves_a_final_checkpoint_and_resume_goes_on(tmp_path):
    run_dir = tmp_path / "run"
    # The multiprocessing backend: Ctrl-C reaches its workers too (one process group).
    process = start(run_dir, "--vec.backend", "multiprocessing", "--vec.num_workers", "2",
                    "--train.checkpoint_interval", "1000")
    wait_for(lambda: updates_logged(run_dir) >= 2, process)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "interrupted: saving a final checkpoint" in stdout
    assert "Traceback" not in stderr
    steps = load_checkpoint(run_dir)["global_step"]
    assert steps >= 2 * 16 * 16
    result = subprocess.run([*TRAIN, "--resume", str(run_dir), "--total-steps", str(steps + 512)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run_dir)["global_step"] == steps + 512


def children(pid):
    """Pids of the processes whose parent is `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            pass  # gone meanwhile
    return found


def worker_pids(pid):
    """The multiprocessing workers of `pid`: children of its fork server."""
    servers = [c for c in children(pid) if b"forkserver" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return [w for server in servers for w in children(server)]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_killed_worker_ends_training_with_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    process = start(run_dir, "--vec.backend", "multiprocessing", "--vec.num_workers", "2")
    wait_for(lambda: updates_logged(run_dir) >= 1, process)
    workers = worker_pids(process.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - killed < 10
    assert process.returncode == 1
    assert "RuntimeError: multiprocessing worker" in stderr and "killed by SIGKILL" in stderr
    assert load_checkpoint(run_dir)["global_step"] > 0  # what it had learned is saved
