"""Datasets of trajectories for offline RL (the decision transformer): roll
out a PPO checkpoint, or a uniformly random policy, over many envs at once and
keep whole episodes. With a checkpoint, each env takes a random action instead
of the policy's with its own probability epsilon; several epsilons, spread
over the envs, give data of mixed quality.

A dataset is one .npz: observations, actions, rewards, terminals and
truncations, one row per step, episode after episode (each ends on a step
with a terminal or truncation), and the env's name and options."""
import json
import math

import numpy as np
import torch
from gymnasium import spaces

import puffer
from puffer.trainer.checkpoint import load_checkpoint, load_policy
from puffer.trainer.episodes import FIELDS, play, policy_actor


@torch.inference_mode()
def collect(env_name, episodes, env_config, checkpoint=None, epsilons=None, num_envs=256, seed=0, device="cpu"):
    """`episodes` whole episodes as a dict of FIELDS arrays, laid end to end.
    Env i acts with epsilon epsilons[i % len(epsilons)]; without a checkpoint
    every action is random. Each env plays the same number of episodes and
    the first episodes of every env come first, so that trimming to
    `episodes` does not favour short ones."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if checkpoint is None and epsilons is not None:
        raise ValueError("--epsilon needs --checkpoint: without one every action is already random")
    epsilons = [0.0] if epsilons is None else list(epsilons)
    if not epsilons or not all(0.0 <= e <= 1.0 for e in epsilons):
        raise ValueError(f"every epsilon must be in [0, 1], got {epsilons}")
    num_envs = min(num_envs, episodes)
    env = puffer.make(env_name, num_envs=num_envs, **env_config)
    rng = np.random.default_rng(seed)
    policy = None
    if checkpoint is not None:
        saved = load_checkpoint(checkpoint, device, env_name)
        if saved["config"]["env"] != env_config:
            raise ValueError(f"{checkpoint} was trained with env options {saved['config']['env']}, "
                             f"not {env_config}")
        policy = load_policy(saved, env, device)
    epsilon = np.resize(np.asarray(epsilons, np.float64), num_envs)
    quota = math.ceil(episodes / num_envs)

    policy_act = policy_actor(policy, num_envs, device) if policy is not None else None

    def act(obs, rewards, starts, counting):
        actions = random_actions(env.single_action_space, num_envs, rng)
        if policy_act is not None:
            chosen = policy_act(obs, rewards, starts, counting)
            greedy = rng.random(num_envs) >= epsilon
            actions[greedy] = chosen[greedy]
        return actions

    columns = play(env, act, seed=seed, episodes_per_env=quota, record=True)[2]  # [T, num_envs, ...]
    env.close()
    return take_episodes(columns, episodes)


def random_actions(space, n, rng):
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, space.n, n).astype(np.int32)
    return rng.uniform(space.low, space.high, (n, *space.shape)).astype(np.float32)


def take_episodes(columns, count):
    """The first `count` whole episodes of [T, num_envs] step columns, ordered
    by their rank within their env, then by env, laid end to end."""
    ends = columns["terminals"] | columns["truncations"]
    spans = []  # (rank, env, first row, last row)
    for env in range(ends.shape[1]):
        last_rows = np.flatnonzero(ends[:, env])
        first_rows = np.concatenate([[0], last_rows[:-1] + 1])
        spans += [(rank, env, a, b) for rank, (a, b) in enumerate(zip(first_rows, last_rows))]
    spans = sorted(spans)[:count]
    return {field: np.concatenate([values[a:b + 1, env] for _, env, a, b in spans])
            for field, values in columns.items()}


def episode_returns(data):
    """The return of each episode of a dataset."""
    ends = np.flatnonzero(data["terminals"] | data["truncations"])
    return np.add.reduceat(data["rewards"].astype(np.float64), np.concatenate([[0], ends[:-1] + 1]))


def save_dataset(path, data, env_name, env_config):
    with open(path, "wb") as f:  # a file object: np.savez would otherwise append .npz to the name
        np.savez_compressed(f, env_name=env_name, env_config=json.dumps(env_config), **data)


def load_dataset(path, env_name, env_config, env):
    """The FIELDS of the dataset at `path`, checked against the env it is to
    train for: its name, options, and the shapes of its spaces."""
    try:
        file = np.load(path)
    except (ValueError, OSError) as error:  # not an .npz (np.load refuses pickles)
        raise ValueError(f"{path} is not a puffer collect dataset (.npz): {error}") from None
    with file:
        missing = [key for key in ("env_name", "env_config", *FIELDS) if key not in file]
        if missing:
            raise ValueError(f"{path} is not a puffer collect dataset: it lacks {', '.join(missing)}")
        data = {field: file[field] for field in FIELDS}
        saved_name, saved_config = str(file["env_name"]), json.loads(str(file["env_config"]))
    if saved_name != env_name:
        raise ValueError(f"{path} holds {saved_name!r} episodes, not {env_name!r}")
    if saved_config != env_config:
        raise ValueError(f"{path} was collected with env options {saved_config}, but this run uses {env_config}")
    n = len(data["rewards"])
    expected = {"observations": (n, *env.single_observation_space.shape),
                "actions": (n, *env.single_action_space.shape), "terminals": (n,), "truncations": (n,)}
    for field, shape in expected.items():
        if data[field].shape != shape:
            raise ValueError(f"{path}: {field} has shape {data[field].shape}, expected {shape}")
    if n == 0 or not (data["terminals"][-1] or data["truncations"][-1]):
        raise ValueError(f"{path} must hold whole episodes, the last step ending one")
    return data
