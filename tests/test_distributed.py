"""Data-parallel training under torchrun: 2 ranks on the CPU (gloo) keep
identical parameters and learn light_button."""
import json
import os
import subprocess
import sys


def test_two_ranks_stay_in_sync_and_learn(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "puffer", "train", "light_button", "--run-dir", str(run_dir), "--train.torch_threads", "1",
         "--train.total_steps", "65536"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.count("trained light_button") == 1  # rank 0 reports
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["rank_divergence"] == 0.0
    assert last["global_step"] == 65536  # both ranks' steps
    assert last["score"] > 0.9
