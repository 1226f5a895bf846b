"""CartPole: parity with Gymnasium's CartPole-v1, truncation, rewards, logs."""
import math

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from puffer.envs.cartpole.cartpole import CartPole

THETA_THRESHOLD = 12 * 2 * math.pi / 360


def balance(obs):
    """A controller that keeps the pole up for 500 steps from any reset state."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int32)


def test_spaces():
    env = CartPole(num_envs=3)
    assert env.single_action_space == spaces.Discrete(2, dtype=np.int32)
    assert env.single_observation_space.shape == (4,)
    assert env.single_observation_space.dtype == np.float32
    assert env.observations.shape == (3, 4) and env.observations.dtype == np.float32
    assert env.actions.shape == (3,) and env.actions.dtype == np.int32


def test_reset_state_uniform_and_seeded():
    env = CartPole(num_envs=2048)
    obs, _ = env.reset(seed=7)
    obs = obs.copy()
    assert np.all(obs >= -0.05) and np.all(obs < 0.05)
    # Spread over the whole range, in every coordinate.
    assert np.all(obs.min(axis=0) < -0.045) and np.all(obs.max(axis=0) > 0.045)
    assert np.allclose(obs.mean(axis=0), 0.0, atol=0.005)
    again, _ = CartPole(num_envs=2048).reset(seed=7)
    np.testing.assert_array_equal(obs, again)
    other, _ = CartPole(num_envs=2048).reset(seed=8)
    assert not np.array_equal(obs, other)


def test_parity_with_gymnasium():
    """Every transition, replayed from our observation in Gymnasium's
    CartPoleEnv (float64), gives the same next observation and termination."""
    num_envs, steps = 96, 150  # 14,400 transitions
    env = CartPole(num_envs=num_envs)
    obs, _ = env.reset(seed=123)
    gym_env = CartPoleEnv()
    gym_env.reset(seed=0)
    rng = np.random.default_rng(0)
    # A third of the envs act at random (pole falls: theta terminations), a
    # third balance with noise (long episodes, larger velocities), a third
    # balance the pole leaning to one side, which drives the cart out of
    # bounds after ~100 steps (x terminations).
    group = np.arange(num_envs) % 3
    lean = np.where(np.arange(num_envs) % 2 == 0, 0.15, -0.15)
    checked = x_terminals = theta_terminals = 0
    for _ in range(steps):
        before = obs.copy()
        random = rng.integers(0, 2, num_envs, dtype=np.int32)
        noisy = np.where(rng.random(num_envs) < 0.2, random, balance(before))
        leaning = ((before[:, 2] - lean) + 0.5 * before[:, 3] > 0).astype(np.int32)
        actions = np.select([group == 0, group == 1], [random, noisy], leaning).astype(np.int32)
        obs, rewards, terminals, truncations, infos = env.step(actions)
        for i in range(num_envs):
            gym_env.state = before[i].astype(np.float64)
            gym_env.steps_beyond_terminated = None
            expected, reward, terminated, _, _ = gym_env.step(int(actions[i]))
            assert reward == rewards[i] == 1.0
            assert terminated == terminals[i], (i, before[i], actions[i], expected)
            assert not truncations[i]  # no episode here lasts 500 steps
            if terminals[i]:
                # obs[i] is the next episode's first; the final observation
                # holds the one that ended this episode.
                got = infos["final_observations"][i]
                x_terminals += abs(expected[0]) > 2.4
                theta_terminals += abs(expected[2]) > THETA_THRESHOLD
                assert np.all(np.abs(obs[i]) < 0.05)
            else:
                got = obs[i]
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
            checked += 1
    assert checked >= 10_000
    assert x_terminals >= 10 and theta_terminals >= 100, (x_terminals, theta_terminals)


def test_truncation_at_500_steps():
    num_envs = 16
    env = CartPole(num_envs=num_envs)
    obs, _ = env.reset(seed=5)
    gym_env = CartPoleEnv()
    gym_env.reset(seed=0)
    for step in range(1, 501):
        before = obs.copy()
        actions = balance(before)
        obs, rewards, terminals, truncations, infos = env.step(actions)
        assert np.all(rewards == 1.0)
        assert not terminals.any(), f"the pole fell at step {step}"
        if step < 500:
            assert not truncations.any(), f"truncated at step {step}"
            assert env.log() == {}
    assert truncations.all()
    # The final observation is the 500th step's, as Gymnasium computes it;
    # the observation is a fresh episode's.
    for i in range(num_envs):
        gym_env.state = before[i].astype(np.float64)
        expected, _, terminated, _, _ = gym_env.step(int(actions[i]))
        assert not terminated
        np.testing.assert_allclose(infos["final_observations"][i], expected, rtol=0, atol=1e-5)
    assert np.all(np.abs(obs) < 0.05)
    assert env.log() == {"episode_return": 500.0, "episode_length": 500.0, "score": 1.0,
                         "episodes": num_envs}
    # The new episodes run as normal: not done on their first step.
    obs, _, terminals, truncations, _ = env.step(balance(obs))
    assert not terminals.any() and not truncations.any()


def test_rewards_and_episode_log():
    num_envs, steps = 64, 300
    env = CartPole(num_envs=num_envs)
    env.reset(seed=11)
    rng = np.random.default_rng(1)
    lengths = np.zeros(num_envs, dtype=np.int64)
    returns = np.zeros(num_envs)
    finished = []
    for _ in range(steps):
        _, rewards, terminals, truncations, _ = env.step(rng.integers(0, 2, num_envs, dtype=np.int32))
        assert np.all(rewards == 1.0)
        lengths += 1
        returns += rewards
        done = terminals | truncations
        finished += [(lengths[i], returns[i]) for i in np.flatnonzero(done)]
        lengths[done] = 0
        returns[done] = 0.0
    log = env.log()
    assert log["episodes"] == len(finished) > 100
    mean_length = np.mean([length for length, _ in finished])
    assert log["episode_length"] == pytest.approx(mean_length)
    assert log["episode_return"] == pytest.approx(np.mean([ret for _, ret in finished]))
    assert log["score"] == pytest.approx(mean_length / 500)
    assert 0 < log["score"] < 0.2  # random play drops the pole within ~20 steps
    assert env.log() == {}  # read and cleared


def test_same_seed_same_trajectory():
    def run(seed):
        env = CartPole(num_envs=32)
        env.reset(seed=seed)
        rng = np.random.default_rng(2)
        out = []
        for _ in range(100):
            obs, _, terminals, _, infos = env.step(rng.integers(0, 2, 32, dtype=np.int32))
            out.append((obs.copy(), terminals.copy(), infos["final_observations"].copy()))
        return out

    for (a, b) in zip(run(3), run(3)):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_invalid_actions_rejected():
    env = CartPole(num_envs=4)
    obs, _ = env.reset(seed=0)
    obs = obs.copy()
    with pytest.raises(ValueError):
        env.step(np.array([0, 1, 2, 0], dtype=np.int32))
    with pytest.raises(ValueError):
        env.step(np.array([0, -1, 1, 0], dtype=np.int32))
    np.testing.assert_array_equal(env.observations, obs)  # nothing stepped
