"""Gymnasium interop: every puffer env as a registered Gymnasium env that
passes its env checker; puffer's vector envs as Gymnasium VectorEnvs; any
Gymnasium env behind puffer's buffers ("gym:ID"), trained by `puffer train`."""
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import puffer
from puffer.config import load_config, read_toml
from puffer.gymnasium_env import gymnasium_id
from puffer.trainer.checkpoint import load_checkpoint
from puffer.trainer.ppo import train


@pytest.mark.parametrize("name", list(puffer.ENVS))
def test_every_env_is_registered(name):  # and passes Gymnasium's checker: tests/test_dropin.py
    env = gymnasium.make(gymnasium_id(name))
    assert env.spec.id == gymnasium_id(name)


def test_ids_follow_the_gymnasium_twins():
    assert gymnasium_id("cartpole") == "puffer/CartPole-v1"
    assert gymnasium_id("lunar_lander") == "puffer/LunarLander-v3"
    assert gymnasium_id("light_button") == "puffer/LightButton-v0"


def test_module_prefix_registers_without_importing_puffer():
    code = ("import gymnasium; env = gymnasium.make('puffer:puffer/CartPole-v1'); "
            "print(env.reset(seed=0)[0].shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(4,)"


def test_single_env_matches_the_vector_env_and_returns_the_final_observation():
    env = gymnasium.make("puffer/LightButton-v0", num_buttons=3, horizon=5)
    vec = puffer.make("light_button", num_envs=1, num_buttons=3, horizon=5)
    obs, info = env.reset(seed=11)
    assert info == {} and obs.shape == (3,)
    assert np.array_equal(obs, vec.reset(seed=11)[0][0])
    for _ in range(5):  # press the lit button every step: truncated after 5
        obs, reward, terminated, truncated, _ = env.step(int(obs.argmax()))
        vec.step(vec.observations.argmax(1).astype(np.int32))
        assert reward == 1.0 and not terminated
    assert truncated
    assert np.array_equal(obs, vec.final_observations[0])  # not the next episode's first


def test_single_env_renders_in_the_envs_modes():
    env = gymnasium.make("puffer/LightButton-v0", render_mode="ansi", num_buttons=3)
    obs, _ = env.reset(seed=0)
    assert env.metadata["render_modes"] == ["rgb_array", "ansi"]
    assert env.render().index("[*]") == 4 * obs.argmax()  # "[ ] [*] [ ]": the lit button
    env = gymnasium.make("puffer/ConstantReward-v0")
    env.reset(seed=0)
    assert env.render() is None  # no render_mode, no frame


def test_single_env_errors():
    with pytest.raises(TypeError, match="num_button.*options are: num_buttons"):
        gymnasium.make("puffer/LightButton-v0", num_button=3)
    with pytest.raises(ValueError, match=r"renders in modes \['rgb_array', 'ansi'\].*'human'"):
        gymnasium.make("puffer/CartPole-v1", render_mode="human")
    env = gymnasium.make("puffer/CartPole-v1").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must have shape \(\)"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        env.step(2)
    with pytest.raises(TypeError, match="integers"):
        env.step(0.5)
    with pytest.raises(ValueError, match="takes no options"):
        env.reset(options={"x": 1})


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
def test_puffer_vector_envs_are_gymnasium_vector_envs(backend):
    kwargs = {"num_workers": 2} if backend == "multiprocessing" else {}
    env = puffer.make("light_button", num_envs=4, backend=backend, num_buttons=2, horizon=4, **kwargs)
    assert isinstance(env, VectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.observation_space.shape == (4, 2) and env.action_space.shape == (4,)
    # Gymnasium's own wrappers run on it, and count the episodes puffer logs.
    wrapped = RecordEpisodeStatistics(env)
    obs, _ = wrapped.reset(seed=3)
    assert obs in env.observation_space
    wrapped.action_space.seed(0)
    returns = []
    for _ in range(60):
        _, _, _, _, infos = wrapped.step(wrapped.action_space.sample())
        if "episode" in infos:
            returns += list(infos["episode"]["r"][infos["_episode"]])
    log = env.log()
    assert len(returns) == log["episodes"] > 10
    assert np.mean(returns) == pytest.approx(log["episode_return"])
    with pytest.raises(ValueError, match="takes no options"):
        env.reset(options={"level": 2})
    wrapped.close()
    assert env.closed


def gymnasium_rollout(env, seed, actions):
    """Observations, rewards, terminals, truncations and final observations
    (where an episode ended) of a vector env in same-step autoreset mode."""
    obs, _ = env.reset(seed=seed)
    steps = [obs.copy()]
    for batch in actions:
        obs, rewards, terminals, truncations, infos = env.step(batch)
        done = terminals | truncations
        if "final_observations" in infos:
            final = infos["final_observations"][done]
        else:  # Gymnasium's: an object array, filled where done
            final = np.stack(infos["final_obs"][done]) if done.any() else np.zeros((0, 4), np.float32)
        steps += [obs.copy(), rewards.astype(np.float32), terminals.copy(), truncations.copy(),
                  final.astype(np.float32)]
    return steps


@pytest.mark.parametrize("backend", ["serial", "multiprocessing"])
def test_gym_env_matches_gymnasiums_own_vector_env(backend):
    actions = np.random.default_rng(0).integers(0, 2, (300, 4)).astype(np.int32)
    reference = gymnasium.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync",
                                   vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    kwargs = {"num_workers": 2} if backend == "multiprocessing" else {}
    env = puffer.make("gym:CartPole-v1", num_envs=4, backend=backend, **kwargs)
    assert env.single_observation_space == reference.single_observation_space
    want, got = gymnasium_rollout(reference, 5, actions), gymnasium_rollout(env, 5, actions)
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    log = env.log()
    ended = sum(len(final) for final in want[5::5])  # the final observations of every step
    assert log["episodes"] == ended > 4
    env.close()
    reference.close()


def test_gym_env_errors():
    with pytest.raises(ValueError, match="unknown Gymnasium env 'NoSuchEnv-v0'"):
        puffer.make("gym:NoSuchEnv-v0")
    with pytest.raises(TypeError, match="gravity.*options are: g$"):
        puffer.make("gym:Pendulum-v1", gravity=9.81)
    assert puffer.make("gym:Pendulum-v1", g=1.6).envs[0].unwrapped.g == 1.6
    with pytest.raises(ValueError, match="only Box observation spaces"):
        puffer.make("gym:FrozenLake-v1")
    env = puffer.make("gym:CartPole-v1", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.array([0, 2], np.int32))
    env.actions[:] = [0, -1]  # the buffer itself is checked too
    with pytest.raises(ValueError, match="out of range"):
        env.step(env.actions)
    with pytest.raises(TypeError, match="integers"):
        env.step(np.zeros(2, np.float32))


def test_gym_config_takes_the_c_twins_and_the_multiprocessing_backend():
    config = load_config("gym:CartPole-v1")
    assert config["vec"]["backend"] == "multiprocessing"
    assert config["train"]["learning_rate"] == load_config("cartpole")["train"]["learning_rate"]
    assert config["env"] == {"sutton_barto_reward": False}
    config = load_config("gym:Acrobot-v1", {"vec.backend": "serial"})
    assert config["vec"]["backend"] == "serial"
    assert config["train"] == read_toml("defaults")["train"]  # no twin: the defaults
    with pytest.raises(KeyError, match="sutton_barto_reward"):
        load_config("gym:CartPole-v1", {"env.sutton_barto": "true"})


def test_train_a_gymnasium_env(tmp_path):
    config = load_config("gym:CartPole-v1", {"train.torch_threads": 1, "vec.num_envs": 8,
                                             "vec.num_workers": 2, "train.total_steps": 12_000})
    summary = train("gym:CartPole-v1", config, tmp_path / "run", live=False)
    assert summary["global_step"] >= 12_000
    # A random policy lasts about 22 steps; it has learned to balance longer.
    assert summary["first_episode_return"] < 30 < summary["mean_return_100"]
    assert load_checkpoint(tmp_path / "run")["env_name"] == "gym:CartPole-v1"
