"""Misuse as a user might try it gets a clear error, never a crash, an
OOM kill or a silently wrong result: calls out of order, huge num_envs,
huge seeds, a device that is not there."""
import subprocess
import sys

import numpy as np
import pytest

import puffer

MADE = [*puffer.ENVS, "gym:CartPole-v1"]


def made(name, backend):
    if backend == "multiprocessing":
        return puffer.make(name, num_envs=2, backend="multiprocessing", num_workers=2)
    return puffer.make(name, num_envs=2)


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
@pytest.mark.parametrize("name", MADE)
def test_step_before_reset_and_use_after_close_are_errors(name, backend):
    env = made(name, backend)
    with pytest.raises(RuntimeError, match=r"step\(\) before reset\(\): call reset"):
        env.step(env.actions)
    env.reset(seed=0)
    env.step(env.actions)
    env.close()
    for use in (lambda: env.reset(seed=0), lambda: env.step(env.actions), env.log):
        with pytest.raises(RuntimeError, match="closed"):
            use()


@pytest.mark.parametrize("name", MADE)
def test_seeds_of_64_bits_and_more_are_accepted_and_deterministic(name):
    env = puffer.make(name, num_envs=4)
    starts = {}
    for seed in (1, 2**64 - 1, 2**64, 2**64 + 1, 2**100):
        first = env.reset(seed=seed)[0].copy()
        assert np.array_equal(env.reset(seed=seed)[0], first)
        starts[seed] = first.tobytes()
    if name not in ("constant_reward", "continuous_target"):  # their first observation is fixed
        assert len(set(starts.values())) == len(starts)  # 2**64 + 1 is not 1 again


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
@pytest.mark.parametrize("name", ["cartpole", "lunar_lander", "gym:CartPole-v1"])
def test_num_envs_beyond_the_memory_is_refused_up_front(name, backend):
    kwargs = {"backend": "multiprocessing", "num_workers": 2} if backend == "multiprocessing" else {}
    with pytest.raises(ValueError, match=r"num_envs=1,000,000,000 needs at least [\d.]+ GiB .* only [\d.]+ GiB"):
        puffer.make(name, num_envs=10**9, **kwargs)


def puffer_train(*args):
    return subprocess.run([sys.executable, "-m", "puffer", "train", *args], capture_output=True, text=True,
                          timeout=120)


def test_train_with_too_many_envs_or_no_cuda_is_a_clear_error(tmp_path):
    runs = [puffer_train("cartpole", "--vec.num_envs", "1000000000", "--run-dir", str(tmp_path / "big"))]
    import torch
    if not torch.cuda.is_available():
        runs.append(puffer_train("cartpole", "--device", "cuda", "--run-dir", str(tmp_path / "cuda")))
    for result in runs:
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert "puffer train: error:" in result.stderr
    assert not list(tmp_path.iterdir())  # a failed start leaves no run directory


def test_rollout_storage_beyond_the_memory_is_refused(tmp_path):
    from puffer.config import load_config
    from puffer.trainer.ppo import train
    config = load_config("cartpole", {"vec.num_envs": 4_000_000, "train.horizon": 100_000})
    with pytest.raises(ValueError, match="rollout storage"):
        train("cartpole", config, tmp_path / "run", live=False)
