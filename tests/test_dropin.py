"""Puffer as a drop-in for Gymnasium and EnvPool users: the peers' own
checks (Gymnasium's env checker and Stable-Baselines3's, both with their
render checks), Gymnasium-style generic env tests over every puffer id,
Gymnasium's LunarLander heuristic on ours, EnvPool's async names, and a
CleanRL-style PPO over gymnasium.make_vec that learns."""
import copy
import pickle
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import puffer
from puffer.gymnasium_env import gymnasium_id

IDS = [gymnasium_id(name) for name in puffer.ENVS]
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "cleanrl_ppo.py"


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasiums_env_checker_with_its_render_check(env_id):
    env = gymnasium.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*A Box observation space (minimum|maximum) value is")  # CartPole's, as Gymnasium's
        check_env(env.unwrapped)  # renders in each of metadata["render_modes"], made from the spec


@pytest.mark.parametrize("env_id", IDS)
def test_stable_baselines3s_env_checker_with_its_render_check(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    env = gymnasium.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3 warns where it would not learn well: none of those either
        sb3_check_env(env, warn=True, skip_render_check=False)


def rollout(env, steps=300, seed=0):
    """What Gymnasium's generic tests compare: every output of a seeded run
    whose episodes restart with reset() (seeded by the first reset)."""
    env.action_space.seed(seed)
    outputs = [env.reset(seed=seed)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs in env.observation_space and isinstance(reward, float)
        assert isinstance(terminated, bool) and isinstance(truncated, bool) and info == {}
        outputs.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            outputs.append(env.reset())
    return outputs


def equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a == b


@pytest.mark.parametrize("env_id", IDS)
def test_determinism_pickling_deep_copies_and_close(env_id):
    want = rollout(gymnasium.make(env_id))
    assert sum(len(step) == 2 for step in want) > 1  # episodes ended and restarted
    for made in (lambda: gymnasium.make(env_id),
                 lambda: pickle.loads(pickle.dumps(gymnasium.make(env_id))),
                 lambda: copy.deepcopy(gymnasium.make(env_id))):
        got = rollout(made())
        assert len(got) == len(want) and all(equal(a, b) for a, b in zip(want, got))
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    env.close()
    env.step(env.action_space.sample())  # usable after close(), as Gymnasium's envs without a window


@pytest.mark.parametrize("env_id", IDS)
def test_every_render_mode_gives_its_kind_of_frame(env_id):
    for mode in gymnasium.make(env_id).metadata["render_modes"]:
        env = gymnasium.make(env_id, render_mode=mode)
        env.reset(seed=0)
        frame = env.render()
        if mode == "rgb_array":
            assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        else:
            assert mode == "ansi" and isinstance(frame, str) and frame


@pytest.mark.parametrize("continuous", [False, True])
def test_gymnasiums_lunar_lander_heuristic_lands_ours(continuous):
    from gymnasium.envs.box2d.lunar_lander import heuristic
    env = gymnasium.make("puffer/LunarLander-v3", continuous=continuous)
    assert env.unwrapped.continuous is continuous
    returns = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(heuristic(env, obs))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    assert np.mean(returns) > 100, returns  # it lands: Gymnasium's heuristic scores about 200+ on theirs


def test_continuous_lunar_lander_takes_integer_actions():
    env = gymnasium.make("puffer/LunarLander-v3", continuous=True)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([1, 0]))
    assert obs in env.observation_space


def test_envpool_style_async_names_and_batch_spaces():
    env = puffer.make("cartpole", num_envs=8, backend="multiprocessing", num_workers=4, batch_size=4)
    try:
        assert env.action_space.shape == (4,) and env.observation_space.shape == (4, 4)  # one batch
        env.async_reset(seed=0)
        seen = []
        for _ in range(6):
            obs, rewards, terminals, truncations, info = env.recv()
            assert obs.shape == (4, 4) and info["env_id"].shape == (4,)
            seen.append(tuple(info["env_id"]))
            env.send(np.ones(4, np.int64), info["env_id"])
        assert seen[:2] == [(0, 1, 2, 3), (4, 5, 6, 7)] and seen[2:4] == seen[:2]
        env.recv()  # batch 0 again
        with pytest.raises(ValueError, match="env_id must be the envs of the batch whose actions are due, 0..3"):
            env.send(np.ones(4, np.int64), np.arange(4, 8))
        with pytest.raises(ValueError, match=r"actions must have shape \(4,\) \(a row per env stepped"):
            env.send(np.ones(8, np.int64))
    finally:
        env.close()


def test_a_cleanrl_style_ppo_over_make_vec_learns():
    import runpy
    main = runpy.run_path(str(EXAMPLE))["main"]
    assert main(["--total-steps", "60000", "--seed", "1"]) > 150  # random play: about 22


def test_puffer_list_names_the_gymnasium_ids_and_autoreset_mode(capsys):
    from puffer.cli import main
    main(["list"])
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.split()}
    assert "puffer/CartPole-v1" in rows["cartpole"] and rows["cartpole"].rstrip().endswith("SameStep")
    assert all(gymnasium_id(name) in rows[name] for name in puffer.ENVS)


def test_the_seeding_rule_the_readme_states():
    ours = gymnasium.make_vec("puffer/CartPole-v1", num_envs=4).reset(seed=0)[0].copy()
    sync = gymnasium.make_vec("puffer/CartPole-v1", num_envs=4, vectorization_mode="sync").reset(seed=0)[0]
    assert np.array_equal(ours[0], sync[0]) and not np.array_equal(ours[1:], sync[1:])  # row 0 only
    assert np.array_equal(ours[0], gymnasium.make("puffer/CartPole-v1").reset(seed=0)[0])
    next_seed = gymnasium.make_vec("puffer/CartPole-v1", num_envs=4).reset(seed=1)[0]
    assert not any(np.array_equal(row, other) for row in ours for other in next_seed)  # no stream shared
