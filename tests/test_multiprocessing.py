"""The multiprocessing backend: same trajectories as the serial backend, the
async send/recv API, log merging, and how worker errors, deaths and hangs
reach the parent."""
import os
import signal
import time

import numpy as np
import pytest
from gymnasium import spaces

import puffer
from puffer.vector import Multiprocessing

from mp_test_envs import FailsInWorker, HangsOnAction3


def random_actions(space, num_envs, rng):
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, space.n, num_envs).astype(np.int32)
    return rng.uniform(space.low, space.high, (num_envs, *space.shape)).astype(np.float32)


def assert_same_step(a, b, all_final_observations=True):
    """Same observations, rewards, terminals, truncations and final
    observations: all rows, or only those of envs that just finished (the
    others keep whatever an earlier episode left there)."""
    for x, y in zip(a[:4], b[:4]):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    rows = slice(None) if all_final_observations else a[2] | a[3]
    assert np.array_equal(a[4]["final_observations"][rows], b[4]["final_observations"][rows])


@pytest.fixture
def mp_env():
    env = puffer.make("light_button", num_envs=8, backend="multiprocessing", num_workers=2)
    yield env
    env.close()


@pytest.mark.parametrize("name", ["light_button", "cartpole"])
def test_matches_serial_whatever_the_number_of_workers(name):
    num_envs, seed = 8, 1234
    serial = puffer.make(name, num_envs=num_envs)
    serial.reset(seed=seed)
    rng = np.random.default_rng(0)
    actions = [random_actions(serial.single_action_space, num_envs, rng) for _ in range(150)]
    expected = []
    for a in actions:
        o, r, te, tr, info = serial.step(a)
        expected.append((o.copy(), r.copy(), te.copy(), tr.copy(),
                         {"final_observations": info["final_observations"].copy()}))
    expected_log = serial.log()
    assert expected_log["episodes"] > 0

    for num_workers in (1, 2, 4):
        with puffer.make(name, num_envs=num_envs, backend="multiprocessing",
                         num_workers=num_workers) as env:
            assert env.single_observation_space == serial.single_observation_space
            assert env.single_action_space == serial.single_action_space
            obs, _ = env.reset(seed=seed)
            serial.reset(seed=seed)
            assert np.array_equal(obs, serial.observations)
            for a, want in zip(actions, expected):
                assert_same_step(env.step(a), want)
            log = env.log()
            assert log.keys() == expected_log.keys()
            assert log["episodes"] == expected_log["episodes"]
            for key in ("episode_return", "episode_length", "score"):
                assert log[key] == pytest.approx(expected_log[key], rel=1e-12)


def test_buffers_are_shared_and_returned_in_place(mp_env):
    obs, infos = mp_env.reset(seed=0)
    assert obs is mp_env.observations and infos["final_observations"] is mp_env.final_observations
    # Actions written straight into the shared buffer are used as they are.
    mp_env.actions[:] = 1
    o, r, te, tr, _ = mp_env.step(mp_env.actions)
    assert o is mp_env.observations and r is mp_env.rewards
    assert te is mp_env.terminals and tr is mp_env.truncations


def test_send_recv_equals_step():
    kwargs = dict(num_envs=8, backend="multiprocessing", num_workers=2, num_buttons=3)
    with puffer.make("light_button", **kwargs) as a, puffer.make("light_button", **kwargs) as b:
        a.reset(seed=7)
        b.reset(seed=7)
        rng = np.random.default_rng(1)
        for _ in range(50):
            actions = rng.integers(0, 3, 8).astype(np.int32)
            assert b.send(actions) is None
            want = tuple(x.copy() if isinstance(x, np.ndarray) else x for x in a.step(actions))
            assert_same_step(b.recv(), want)
        assert a.log() == b.log()


def test_send_recv_misuse(mp_env):
    mp_env.reset(seed=0)
    with pytest.raises(RuntimeError, match="without a pending send"):
        mp_env.recv()
    mp_env.send(np.zeros(8, np.int32))
    with pytest.raises(RuntimeError, match="call recv"):
        mp_env.send(np.zeros(8, np.int32))
    with pytest.raises(RuntimeError, match="call recv"):
        mp_env.reset()
    mp_env.recv()
    mp_env.step(np.zeros(8, np.int32))



@pytest.mark.parametrize("name", ["light_button", "cartpole"])
def test_async_batches_match_serial(name):
    """EnvPool-style async mode: 12 envs, 4 workers, batches of 6. Each batch
    holds its rows of the serial run's trajectories, whatever the timing."""
    num_envs, batch_size, seed, steps = 12, 6, 7, 60
    serial = puffer.make(name, num_envs=num_envs)
    serial.reset(seed=seed)
    rng = np.random.default_rng(1)
    actions = [random_actions(serial.single_action_space, num_envs, rng) for _ in range(steps)]
    expected = [tuple(x.copy() for x in serial.step(a)[:4]) for a in actions]
    env = puffer.make(name, num_envs=num_envs, backend="multiprocessing", num_workers=4,
                      batch_size=batch_size)
    try:
        env.reset(seed=seed)
        batches = [slice(0, 6), slice(6, 12)]
        for rows in batches:  # every batch awaits actions after reset
            env.send(actions[0][rows])
        for t in range(steps):
            for rows in batches:
                received = env.recv()
                for got, want in zip(received[:4], expected[t]):
                    assert np.shares_memory(got, env.observations) or got.base is not None
                    assert np.array_equal(got, want[rows])
                if t + 1 < steps:
                    env.send(actions[t + 1][rows])
        assert env.log()["episodes"] == serial.log()["episodes"]
    finally:
        env.close()


def test_async_recv_returns_the_same_views_every_time():
    env = puffer.make("cartpole", num_envs=8, backend="multiprocessing", num_workers=2, batch_size=4)
    try:
        env.reset(seed=0)
        seen = {}
        for _ in range(6):
            env.send(np.zeros(4, np.int32))
            obs, rewards, terminals, truncations, infos = env.recv()
            assert obs.shape == (4, 4) and np.shares_memory(obs, env.observations)
            assert np.shares_memory(infos["final_observations"], env.final_observations)
            first = seen.setdefault(obs.__array_interface__["data"][0], obs)
            assert first is obs  # made once per batch, not per call
        assert len(seen) == 2
    finally:
        env.close()


def test_async_misuse_and_bad_batch_sizes():
    for batch_size in (3, 5, 0, 16, 2.0):
        with pytest.raises(ValueError, match="batch_size must divide num_envs"):
            puffer.make("light_button", num_envs=8, backend="multiprocessing", num_workers=2,
                        batch_size=batch_size)
    env = puffer.make("light_button", num_envs=8, backend="multiprocessing", num_workers=2,
                      batch_size=4)
    try:
        env.reset(seed=0)
        with pytest.raises(RuntimeError, match="without a pending send"):
            env.recv()
        with pytest.raises(ValueError, match=r"shape \(4,\)"):
            env.send(np.zeros(8, np.int32))
        with pytest.raises(ValueError, match="out of range"):
            env.send(np.full(4, 99, np.int32))
        env.send(np.zeros(4, np.int32))
        env.send(np.zeros(4, np.int32))
        with pytest.raises(RuntimeError, match="call recv"):
            env.send(np.zeros(4, np.int32))
        with pytest.raises(RuntimeError, match="call recv"):
            env.reset()
        log = env.log()  # waits for the steps in flight: their episodes count
        ended = sum(int((terminals | truncations).sum()) for _, _, terminals, truncations, _ in
                    (env.recv(), env.recv()))
        assert ended > 0 and log["episodes"] == ended
        env.reset(seed=1)
    finally:
        env.close()

def test_log_merges_worker_means_weighted_by_episodes():
    # Random presses on 2 buttons: the workers finish different numbers of
    # episodes, so an unweighted mean of their means would be off.
    with puffer.make("light_button", num_envs=4, backend="multiprocessing", num_workers=2,
                     num_buttons=2, horizon=4) as env:
        env.reset(seed=3)
        assert env.log() == {}
        rng = np.random.default_rng(5)
        returns, lengths = [], []
        running_return, running_length = np.zeros(4), np.zeros(4)
        for _ in range(40):
            _, r, te, tr, _ = env.step(rng.integers(0, 2, 4).astype(np.int32))
            running_return += r
            running_length += 1
            done = te | tr
            returns += list(running_return[done])
            lengths += list(running_length[done])
            running_return[done] = 0
            running_length[done] = 0
        log = env.log()
        assert list(log) == ["episode_return", "episode_length", "score", "episodes"]
        assert log["episodes"] == len(returns) > 0
        assert log["episode_return"] == pytest.approx(np.mean(returns))
        assert log["episode_length"] == pytest.approx(np.mean(lengths))
        assert env.log() == {}  # cleared by the call before


def test_out_of_range_action_raises_and_env_keeps_working(mp_env):
    serial = puffer.make("light_button", num_envs=8)
    mp_env.reset(seed=11)
    serial.reset(seed=11)
    before = mp_env.observations.copy()
    bad = np.zeros(8, np.int32)
    bad[5] = 7  # caught in the parent, whole batch, before any worker steps
    with pytest.raises(ValueError, match=r"actions\[5\] = 7 is out of range"):
        mp_env.step(bad)
    with pytest.raises(ValueError, match=r"actions\[0\] = 9 is out of range"):
        mp_env.step(np.full(8, 9, np.int64))
    assert np.array_equal(mp_env.observations, before)
    with pytest.raises(ValueError, match="shape"):
        mp_env.step(np.zeros(7, np.int32))
    with pytest.raises(TypeError, match="integers"):
        mp_env.step(np.zeros(8, np.float32))
    # Still usable, and in step with serial after a reset.
    mp_env.step(np.zeros(8, np.int32))
    mp_env.reset(seed=12)
    serial.reset(seed=12)
    rng = np.random.default_rng(2)
    for _ in range(20):
        a = rng.integers(0, 4, 8).astype(np.int32)
        assert_same_step(mp_env.step(a), serial.step(a), all_final_observations=False)


def test_bad_seed(mp_env):
    with pytest.raises(ValueError, match="seed"):
        mp_env.reset(seed=-1)
    obs, _ = mp_env.reset()  # a random seed
    assert obs.shape == (8, 4)


def test_killed_worker_raises_runtime_error(mp_env):
    mp_env.reset(seed=0)
    mp_env.step(np.zeros(8, np.int32))
    victim = mp_env._processes[1]
    os.kill(victim.pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker 1 .*exit code -9 \(killed by SIGKILL\)"):
        mp_env.step(np.zeros(8, np.int32))
    assert time.monotonic() - start < 5
    # The backend closed itself, the other worker too.
    assert not any(p.is_alive() for p in mp_env._processes)
    with pytest.raises(RuntimeError, match="closed"):
        mp_env.step(np.zeros(8, np.int32))
    mp_env.close()


def test_worker_killed_mid_step():
    env = Multiprocessing(HangsOnAction3, num_envs=4, num_workers=2)
    env.reset(seed=0)
    actions = np.zeros(4, np.int32)
    actions[:2] = 3  # worker 0 sleeps in its step
    env.send(actions)
    os.kill(env._processes[0].pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="worker 0 .*SIGKILL"):
        env.recv()
    env.close()


def test_hung_worker_times_out():
    env = Multiprocessing(HangsOnAction3, num_envs=4, num_workers=2, timeout=0.5)
    env.reset(seed=0)
    env.step(np.zeros(4, np.int32))
    actions = np.zeros(4, np.int32)
    actions[2:] = 3  # only worker 1 hangs
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"worker\(s\) \[1\]"):
        env.step(actions)
    assert time.monotonic() - start < 5
    assert not any(p.is_alive() for p in env._processes)
    env.close()


@pytest.mark.parametrize("num_envs, num_workers, match", [
    (8, 3, "multiple of num_workers"),
    (8, 16, "must not exceed num_envs"),
    (8, 0, "at least 1"),
    (8, -2, "at least 1"),
    (8, 2.0, "integer"),
    (8, True, "integer"),
    (0, 1, "num_envs"),
])
def test_bad_worker_counts(num_envs, num_workers, match):
    with pytest.raises(ValueError, match=match):
        puffer.make("light_button", num_envs=num_envs, backend="multiprocessing",
                    num_workers=num_workers)


def test_default_num_workers_divides_num_envs():
    with puffer.make("light_button", num_envs=6, backend="multiprocessing") as env:
        assert 6 % env.num_workers == 0
        assert env.num_workers <= min(os.cpu_count(), 6)
        env.reset(seed=0)
        env.step(np.zeros(6, np.int32))


def test_bad_env_option_raises_same_error_as_serial():
    with pytest.raises(ValueError) as serial_error:
        puffer.make("light_button", num_envs=4, horizon=0)
    with pytest.raises(ValueError) as mp_error:
        puffer.make("light_button", num_envs=4, backend="multiprocessing", num_workers=2, horizon=0)
    assert str(mp_error.value) == str(serial_error.value)


def test_error_in_worker_constructor_surfaces():
    with pytest.raises(KeyError, match="cannot build 2 envs") as caught:
        Multiprocessing(FailsInWorker, num_envs=4, num_workers=2)
    assert "worker 0" in "".join(caught.value.__notes__)


def test_close_is_idempotent():
    env = puffer.make("light_button", num_envs=4, backend="multiprocessing", num_workers=2)
    processes = list(env._processes)
    env.reset(seed=0)
    env.send(np.zeros(4, np.int32))  # closing with a step in flight is fine
    env.close()
    env.close()
    assert not any(p.is_alive() for p in processes)
    assert env.observations is None
    for call in (lambda: env.reset(), lambda: env.step(np.zeros(4, np.int32)), env.log, env.recv):
        with pytest.raises(RuntimeError, match="closed"):
            call()
    del env  # __del__ after close is a no-op


def test_reset_index_offset_matches_serial():
    # Envs 4..11 of a larger vector env (a second rank's share of the envs).
    serial = puffer.make("cartpole", num_envs=8)
    serial.reset(seed=5, index_offset=4)
    with puffer.make("cartpole", num_envs=8, backend="multiprocessing", num_workers=2) as env:
        obs = env.reset(seed=5, index_offset=4)[0].copy()
        assert np.array_equal(obs, serial.observations)
        assert not np.array_equal(obs, env.reset(seed=5)[0])
