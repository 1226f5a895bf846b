"""The throughput benchmarks. Not part of the plain `pytest` run (the test
paths are tests/); run them through the regression check,

    python benchmarks/check.py            # or: pytest benchmarks/

which compares each figure, normalised by its calibration (see conftest.py),
with benchmarks/baseline.json.

Figures: every registered env's step (puffer.ENVS, so a new env is covered
automatically) at several num_envs; each vector backend; GAE over a full
rollout; and the SPS of a short, fixed PPO training run.
"""
import time

import numpy as np
import pytest

import puffer
from puffer.bench import action_pool

ENV_NUM_ENVS = (1, 64, 4096)
BACKENDS = (("serial", None), ("multiprocessing", 2))
BACKEND_ENV, BACKEND_NUM_ENVS = "cartpole", (64, 4096)
MP_ROUND_STEPS, MP_ROUNDS = 16, 300
# horizon x num_envs: lunar_lander's rollout is 128 x 64. Small enough to stay
# in cache, so that it measures the loop, as its calibration does, and not the
# machine's memory bandwidth (which the compiled calibration does not follow:
# 128 x 4096 ran at 0.6x its baseline on a machine of the same compute speed).
GAE_SHAPE = (128, 128)
TRAIN_ENV, TRAIN_UPDATES, TRAIN_RUNS, TRAIN_SKIP = "cartpole", 24, 3, 2


# The length of one timed round of env steps (seconds): short enough that many
# rounds run undisturbed between the scheduler's interruptions on a busy
# machine, long enough that the timer's own cost does not count.
ROUND_SECONDS = 0.002


def repeats_for(call, seconds=ROUND_SECONDS):
    """How many calls of `call` take about `seconds` (at least 1)."""
    call()  # warm
    count, start = 0, time.perf_counter()
    while True:
        call()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            return max(1, round(seconds * count / elapsed))


def step_calibration(num_envs):
    # Up to a few dozen envs a step's time goes mostly to the Python and numpy
    # calls around the C loop; beyond, to the loop.
    return "py" if num_envs <= 64 else "c"


def stepper(env, num_envs, count=None):
    """A round of `count` env steps (default: about ROUND_SECONDS of them)
    and its number of env steps."""
    env.reset(seed=0)
    pool = action_pool(env.single_action_space, num_envs)
    size, step = len(pool), env.step
    count = count or repeats_for(lambda: step(pool[0]))

    def run():
        for i in range(count):
            step(pool[i % size])
    return run, count * num_envs


@pytest.mark.parametrize("num_envs", ENV_NUM_ENVS)
@pytest.mark.parametrize("name", list(puffer.ENVS))
def test_env_step(measure, name, num_envs):
    env = puffer.make(name, num_envs=num_envs)
    try:
        run, work = stepper(env, num_envs)
        measure(run, work, step_calibration(num_envs), f"step {name} n={num_envs}", "env steps/s")
    finally:
        env.close()


@pytest.mark.parametrize("num_envs", BACKEND_NUM_ENVS)
@pytest.mark.parametrize("backend,num_workers", BACKENDS)
def test_backend_step(measure, backend, num_workers, num_envs):
    env = puffer.make(BACKEND_ENV, num_envs=num_envs, backend=backend, num_workers=num_workers)
    try:
        workers = f" w={num_workers}" if num_workers else ""
        figure = f"backend {backend}{workers} {BACKEND_ENV} n={num_envs}"
        if backend == "multiprocessing":
            # A step is a round trip of messages to the workers: Python and
            # system calls, and waking the workers up. Its time varies more
            # from run to run than an in-process step's: more, fixed rounds.
            run, work = stepper(env, num_envs, count=MP_ROUND_STEPS)
            measure(run, work, "py", figure, "env steps/s", rounds=MP_ROUNDS)
        else:
            run, work = stepper(env, num_envs)
            measure(run, work, step_calibration(num_envs), figure, "env steps/s")
    finally:
        env.close()


def test_gae(measure):
    from puffer.trainer.gae import compute_gae
    rng = np.random.default_rng(0)
    shape = GAE_SHAPE
    rewards = rng.standard_normal(shape, dtype=np.float32)
    values = rng.standard_normal(shape, dtype=np.float32)
    dones = (rng.random(shape) < 0.01).astype(np.uint8)
    next_values = rng.standard_normal(shape[1], dtype=np.float32)
    advantages = np.zeros(shape, np.float32)

    def run():
        compute_gae(rewards, values, dones, next_values, 0.99, 0.95, advantages)
    measure(run, shape[0] * shape[1], "c", f"gae {shape[0]}x{shape[1]}", "elements/s")


def test_train_sps(measure, calibration, tmp_path, monkeypatch):
    """SPS of PPO's training loop (rollout, GAE, learning) on cartpole with
    its tuned config, on one torch thread, over a fixed number of updates,
    TRAIN_RUNS times. Start-up is left out: the figure is the fastest update
    after the first TRAIN_SKIP of each run.

    An update takes tens of milliseconds, long enough that on a busy machine
    hardly one runs without the scheduler handing the core to someone else
    part of the time; so updates are timed in CPU time (time.process_time:
    the process's own, one torch thread), and so is the torch calibration,
    which runs between every two updates: train() calls Dashboard.write
    once per update, and the benchmark wraps it to take the time there."""
    from puffer.config import load_config
    from puffer.trainer.dashboard import Dashboard
    from puffer.trainer.ppo import train
    config = load_config(TRAIN_ENV, {"train.torch_threads": 1, "train.checkpoint_interval": 10**6})
    batch = config["vec"]["num_envs"] * config["train"]["horizon"]
    config["train"]["total_steps"] = TRAIN_UPDATES * batch
    clock = time.process_time
    reference = calibration("torch", clock=clock)
    speeds, runs = [], []
    marks = []  # per update of the current run: (global step, clock at its end, at the next one's start)
    write = Dashboard.write

    def timed_write(self, metrics):
        end = clock()
        write(self, metrics)
        reference()
        marks.append((metrics["global_step"], end, clock()))
    monkeypatch.setattr(Dashboard, "write", timed_write)

    def run():
        marks.clear()
        runs.append(tmp_path / f"run{len(runs)}")
        train(TRAIN_ENV, config, runs[-1], live=False)
        assert len(marks) == TRAIN_UPDATES, "train() no longer calls Dashboard.write once per update"
        for (step0, _, start), (step1, end, _) in zip(marks[TRAIN_SKIP:], marks[TRAIN_SKIP + 1:]):
            speeds.append((step1 - step0) / (end - start))

    measure(run, TRAIN_UPDATES * batch, reference, f"train {TRAIN_ENV} sps", "env steps/CPU-s",
            rounds=TRAIN_RUNS, warmup_rounds=0, speed=lambda: max(speeds))
