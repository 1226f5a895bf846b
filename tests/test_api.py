"""API conformance, determinism and bad-input errors for every registered env."""
import numpy as np
import pytest
from gymnasium import spaces

import puffer

ENV_NAMES = list(puffer.ENVS)
NUM_ENVS = 64


def random_actions(env, rng, steps):
    space = env.single_action_space
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, space.n, size=(steps, env.num_envs), dtype=np.int32)
    low, high = np.broadcast_to(space.low, space.shape), np.broadcast_to(space.high, space.shape)
    return rng.uniform(low, high, size=(steps, env.num_envs, *space.shape)).astype(np.float32)


def rollout(name, seed, actions, **kwargs):
    env = puffer.make(name, num_envs=NUM_ENVS, **kwargs)
    obs, _ = env.reset(seed=seed)
    trajectory = [obs.copy()]
    for batch in actions:
        obs, rew, term, trunc, _ = env.step(batch)
        trajectory += [obs.copy(), rew.copy(), term.copy(), trunc.copy()]
    return trajectory


@pytest.mark.parametrize("name", ENV_NAMES)
def test_spaces_and_buffers(name):
    env = puffer.make(name, num_envs=NUM_ENVS)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    assert isinstance(obs_space, spaces.Box)
    assert isinstance(act_space, (spaces.Discrete, spaces.Box))
    assert env.num_envs == NUM_ENVS
    obs, infos = env.reset(seed=0)
    assert obs is env.observations
    assert obs.shape == (NUM_ENVS, *obs_space.shape) and obs.dtype == obs_space.dtype
    assert env.actions.shape == (NUM_ENVS, *act_space.shape) and env.actions.dtype == act_space.dtype
    assert all(obs_space.contains(row) for row in obs)
    actions = random_actions(env, np.random.default_rng(0), 300)
    for batch in actions:
        result = env.step(batch)
        # The same caller-visible buffers every step: no copies.
        assert result[0] is env.observations and result[1] is env.rewards
        assert result[2] is env.terminals and result[3] is env.truncations
        assert result[1].dtype == np.float32 and result[2].dtype == np.bool_ and result[3].dtype == np.bool_
        assert all(obs_space.contains(row) for row in result[0])
        for i in np.flatnonzero(result[2] | result[3]):
            assert obs_space.contains(env.final_observations[i])
    log = env.log()
    if log:
        assert set(log) == {"episode_return", "episode_length", "score", "episodes"}
        assert log["episodes"] >= 1 and log["episode_length"] >= 1
        assert env.log() == {}  # reading clears it


@pytest.mark.parametrize("name", ENV_NAMES)
def test_same_seed_same_trajectory(name):
    env = puffer.make(name, num_envs=NUM_ENVS)
    actions = random_actions(env, np.random.default_rng(1), 200)
    first, second = rollout(name, 7, actions), rollout(name, 7, actions)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("name", ENV_NAMES)
def test_action_buffer_itself_can_be_passed(name):
    env = puffer.make(name, num_envs=NUM_ENVS)
    actions = random_actions(env, np.random.default_rng(2), 50)
    env.reset(seed=3)
    for batch in actions:
        env.actions[:] = batch
        env.step(env.actions)
    via_buffer = env.observations.copy()
    assert np.array_equal(via_buffer, rollout(name, 3, actions)[-4])


@pytest.mark.parametrize("name", ENV_NAMES)
def test_bad_actions_are_rejected_and_change_nothing(name):
    env = puffer.make(name, num_envs=NUM_ENVS)
    env.reset(seed=5)
    before = env.observations.copy()
    good = random_actions(env, np.random.default_rng(3), 1)[0]
    bad_inputs = [good[:-1], good[None], good.reshape(-1)[:1]]
    if isinstance(env.single_action_space, spaces.Discrete):
        n = env.single_action_space.n
        too_high, negative, wide = good.copy(), good.copy(), good.astype(np.int64)
        too_high[10], negative[3], wide[5] = n, -1, 2**40
        bad_values = [too_high, negative, wide]
        bad_inputs += [good.astype(np.float32)]
        with pytest.raises(TypeError, match="integers"):
            env.step(good.astype(np.float32))
    else:
        nan, inf = good.copy(), good.copy()
        nan[4, 0], inf[2, 0] = np.nan, np.inf
        bad_values = [nan, inf]
        with pytest.raises(TypeError, match="must be numbers"):
            env.step(good.astype(str))
        env.step(np.zeros(good.shape, np.int32))  # integers, as Gymnasium's Box envs take them
        env.reset(seed=5)
    for actions in bad_inputs[:3]:
        with pytest.raises(ValueError, match="shape"):
            env.step(actions)
    for actions in bad_values:
        with pytest.raises(ValueError, match="range|finite"):
            env.step(actions)
    assert np.array_equal(env.observations, before)
    env.step(good)  # still usable


@pytest.mark.parametrize("num_envs", [0, -3, 2.5, True, "8", None])
def test_bad_num_envs(num_envs):
    with pytest.raises(ValueError, match="num_envs"):
        puffer.make("light_button", num_envs=num_envs)


def test_unknown_env_lists_known_names():
    with pytest.raises(ValueError, match="known envs: .*cartpole.*light_button"):
        puffer.make("cartpol")


def test_unknown_option_lists_valid_options():
    with pytest.raises(TypeError, match="num_button.*options are: num_buttons, horizon"):
        puffer.make("light_button", num_button=4)


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        puffer.make("light_button", backend="threads")


@pytest.mark.parametrize("seed", [-1, 1.5, "x"])
def test_bad_seed(seed):
    env = puffer.make("light_button", num_envs=4)
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=seed)


def test_external_buffers_are_used_and_checked():
    from puffer.vector import allocate_buffers
    cls = puffer.env_class("cartpole")
    probe = cls(num_envs=8)
    buffers = allocate_buffers(probe.single_observation_space, probe.single_action_space, 8)
    env = cls(num_envs=8, buffers=buffers)
    obs, _ = env.reset(seed=0)
    assert obs is buffers.observations
    buffers.rewards = np.zeros(8, np.float64)
    with pytest.raises(ValueError, match="rewards must be a C-contiguous float32"):
        cls(num_envs=8, buffers=buffers)
