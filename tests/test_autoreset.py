"""Both of Gymnasium's autoreset modes on puffer's vector envs: SAME_STEP
(puffer's, with Gymnasium's final_obs keys) and NEXT_STEP (Gymnasium's
default, which its vector wrappers need), in the C loop, in worker processes
and in the host of Gymnasium envs; and gymnasium.make_vec giving the C loop."""
import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vector_wrappers

import puffer
from puffer.gymnasium_env import gymnasium_id

# Short episodes, so that a few hundred steps end many.
SHORT = {"light_button": {"horizon": 5}, "constant_reward": {}, "delayed_reward": {},
         "continuous_target": {"horizon": 6}}


def action_table(env, num_envs, steps, seed=0):
    """actions[i, k]: env i's action in its k-th step of play."""
    space = env.single_action_space
    space.seed(seed)
    return np.stack([np.stack([space.sample() for _ in range(steps)]) for _ in range(num_envs)])


def play(env, table, seed, steps):
    """Each env's (observation, reward, terminal, truncation) after each of
    its steps, env i acting table[i, k] in its k-th step of play; a NEXT_STEP
    reset step consumes no action. SAME_STEP steps that end an episode give
    two entries, as NEXT_STEP would: the last observation, then the reset's."""
    n = env.num_envs
    next_step = env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    played = np.zeros(n, int)
    resetting = np.zeros(n, bool)
    obs, _ = env.reset(seed=seed)
    streams = [[(obs[i].copy(), 0.0, False, False)] for i in range(n)]
    for _ in range(steps):
        obs, rewards, terminals, truncations, infos = env.step(table[np.arange(n), played])
        for i in range(n):
            ended = terminals[i] or truncations[i]
            if not next_step and ended:
                streams[i].append((infos["final_observations"][i].copy(), float(rewards[i]), bool(terminals[i]),
                                   bool(truncations[i])))
                streams[i].append((obs[i].copy(), 0.0, False, False))
            else:
                streams[i].append((obs[i].copy(), float(rewards[i]), bool(terminals[i]), bool(truncations[i])))
            played[i] += not resetting[i]
        resetting = (terminals | truncations) if next_step else resetting
    return streams


def same(a, b):
    return np.array_equal(a[0], b[0]) and a[1:] == b[1:]


@pytest.mark.parametrize("name", list(puffer.ENVS))
def test_next_step_plays_the_episodes_of_same_step_a_step_later(name):
    options = SHORT.get(name, {})
    steps = 300
    same_step = puffer.make(name, num_envs=3, **options)
    next_step = puffer.make(name, num_envs=3, autoreset_mode="NextStep", **options)
    assert next_step.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    table = action_table(same_step, 3, steps + 1)
    want, got = play(same_step, table, 7, steps), play(next_step, table, 7, steps)
    for i in range(3):
        assert len(got[i]) == steps + 1
        assert all(same(a, b) for a, b in zip(want[i], got[i])), f"env {i}"
    ended = sum(entry[2] or entry[3] for stream in got for entry in stream)
    assert ended >= 3


def test_next_step_across_workers_and_in_async_batches():
    kwargs = dict(num_envs=4, horizon=5)
    serial = puffer.make("light_button", autoreset_mode="NextStep", **kwargs)
    workers = puffer.make("light_button", backend="multiprocessing", num_workers=2, autoreset_mode="NextStep",
                          **kwargs)
    table = action_table(serial, 4, 41)
    try:
        assert workers.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        want, got = play(serial, table, 3, 40), play(workers, table, 3, 40)
        assert all(same(a, b) for w, g in zip(want, got) for a, b in zip(w, g))
    finally:
        workers.close()


def test_gymnasium_host_in_next_step_matches_gymnasiums_own_vector_env():
    actions = np.random.default_rng(0).integers(0, 2, (300, 4)).astype(np.int32)
    reference = gymnasium.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync")  # NEXT_STEP
    env = puffer.make("gym:CartPole-v1", num_envs=4, autoreset_mode="NextStep")
    for vec in (reference, env):
        obs, _ = vec.reset(seed=5)
        vec.steps = [obs.copy()]
        for batch in actions:
            vec.steps += [array.copy() for array in vec.step(batch)[:4]]
    assert all(np.array_equal(a, b) for a, b in zip(reference.steps, env.steps, strict=True))
    assert sum(terminals.sum() for terminals in env.steps[3::4]) > 4  # episodes ended, and restarted


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
def test_same_step_infos_carry_gymnasiums_final_obs_where_an_episode_ended(backend):
    kwargs = {"num_workers": 2} if backend == "multiprocessing" else {}
    env = puffer.make("light_button", num_envs=4, backend=backend, horizon=3, **kwargs)
    obs, _ = env.reset(seed=0)
    ends = 0
    for _ in range(10):  # the lit button pressed: every episode lasts its horizon
        obs, _, terminals, truncations, infos = env.step(obs.argmax(1).astype(np.int32))
        done = terminals | truncations
        if not done.any():
            assert set(infos) - {"env_id"} == {"final_observations"}
            continue
        ends += 1
        assert np.array_equal(infos["_final_obs"], done) and np.array_equal(infos["_final_info"], done)
        assert infos["final_info"] == {}
        for i in range(4):
            if done[i]:
                assert np.array_equal(infos["final_obs"][i], infos["final_observations"][i])
                assert infos["final_obs"][i].base is not env.final_observations  # a copy: kept, it stays
            else:
                assert infos["final_obs"][i] is None
    assert ends == 3
    env.close()


def test_gymnasiums_vector_wrappers_run_over_both_modes():
    env = vector_wrappers.NormalizeObservation(gymnasium.make_vec("puffer/CartPole-v1", num_envs=8))
    env = vector_wrappers.TransformObservation(env, lambda obs: np.clip(obs, -5, 5), env.observation_space)
    env = vector_wrappers.RecordEpisodeStatistics(env)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    episodes = 0
    for _ in range(200):
        obs, _, _, _, infos = env.step(env.action_space.sample())
        episodes += infos.get("_episode", np.zeros(8, bool)).sum()
    assert episodes == env.unwrapped.log()["episodes"] > 20
    assert abs(obs.mean()) < 2  # normalised
    # SAME_STEP: the wrappers that take it (the rest refuse it by name).
    same_step = puffer.make("cartpole", num_envs=8)
    env = vector_wrappers.RecordEpisodeStatistics(vector_wrappers.NormalizeReward(same_step))
    env.reset(seed=0)
    episodes, rewards = 0, []
    for _ in range(200):
        _, reward, _, _, infos = env.step(env.action_space.sample())
        episodes += infos.get("_episode", np.zeros(8, bool)).sum()
        rewards.append(reward.copy())
    assert episodes == same_step.log()["episodes"] > 20
    assert not np.allclose(rewards, 1.0)  # CartPole pays 1 a step: these are scaled
    with pytest.raises(ValueError, match="Expected autoreset_mode to be NEXT_STEP"):
        vector_wrappers.NormalizeObservation(same_step)


def test_make_vec_gives_the_c_loop_in_next_step():
    env = gymnasium.make_vec("puffer/CartPole-v1", num_envs=16)
    assert isinstance(env, puffer.env_class("cartpole"))
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.spec.id == "puffer/CartPole-v1" and env.spec.kwargs["num_envs"] == 16
    same_step = gymnasium.make_vec("puffer/CartPole-v1", num_envs=2, vectorization_mode="vector_entry_point",
                                   autoreset_mode=AutoresetMode.SAME_STEP)
    assert same_step.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    for name in puffer.ENVS:
        vec = gymnasium.make_vec(gymnasium_id(name), num_envs=2)
        assert isinstance(vec, puffer.env_class(name))
        vec.reset(seed=0)
        vec.step(vec.action_space.sample())
    with pytest.raises(ValueError, match="ends its episodes after 500 steps.*max_episode_steps=200"):
        gymnasium.make_vec("puffer/CartPole-v1", num_envs=2, max_episode_steps=200)
    with pytest.raises(ValueError, match="DISABLED is not a mode of puffer envs"):
        puffer.make("cartpole", autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="autoreset_mode must be"):
        puffer.make("cartpole", autoreset_mode="next")
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="before the first reset"):
        env.set_autoreset_mode("SameStep")


def test_specs_carry_the_twins_limits_and_thresholds():
    for env_id, limit, threshold in [("puffer/CartPole-v1", 500, 475.0), ("puffer/LunarLander-v3", 1000, 200.0)]:
        spec = gymnasium.spec(env_id)
        assert (spec.max_episode_steps, spec.reward_threshold) == (limit, threshold)
    assert gymnasium.spec("puffer/LightButton-v0").max_episode_steps is None  # it follows its options
