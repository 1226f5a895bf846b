"""Vector environments: N envs behind one set of numpy buffers.

`PufferEnv` is the in-process backend: the env classes in `puffer.envs` derive
from it and step all their C envs in one C loop. The buffers (observations,
actions, rewards, terminals, truncations, final_observations) belong to the
Python side; `step` returns those same arrays every time, never copies.
"""
import secrets
from types import SimpleNamespace

import numpy as np
from gymnasium import spaces


def buffer_specs(observation_space, action_space, num_envs):
    """Name -> (shape, dtype) of each buffer for `num_envs` envs with these single spaces."""
    obs = ((num_envs, *observation_space.shape), np.dtype(observation_space.dtype))
    return {
        "observations": obs,
        "actions": ((num_envs, *action_space.shape), np.dtype(action_space.dtype)),
        "rewards": ((num_envs,), np.dtype(np.float32)),
        "terminals": ((num_envs,), np.dtype(np.bool_)),
        "truncations": ((num_envs,), np.dtype(np.bool_)),
        "final_observations": obs,
    }


def allocate_buffers(observation_space, action_space, num_envs, zeros=np.zeros):
    """The buffers for `num_envs` envs with these single spaces. `zeros(shape,
    dtype)` allocates one zero-filled array: numpy by default, shared memory
    for the multiprocessing backend."""
    specs = buffer_specs(observation_space, action_space, num_envs)
    return SimpleNamespace(**{name: zeros(shape, dtype) for name, (shape, dtype) in specs.items()})


def check_num_envs(num_envs):
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be an integer of at least 1, got {num_envs!r}")
    return int(num_envs)


class PufferEnv:
    """Base of every C env. A subclass sets `single_observation_space` and
    `single_action_space` (Discrete, or a float32 Box), calls
    `super().__init__(num_envs, buffers)` and then `self.bind(binding.VecEnv, config)`.

    `buffers`, when given, are preallocated arrays (see `allocate_buffers`) that
    the env writes into instead of its own: the multiprocessing backend passes
    slices of shared memory.
    """

    single_observation_space: spaces.Space
    single_action_space: spaces.Space

    def __init__(self, num_envs=1, buffers=None):
        self.num_envs = check_num_envs(num_envs)
        obs_space, act_space = self.single_observation_space, self.single_action_space
        if isinstance(act_space, spaces.Discrete):
            assert act_space.dtype == np.int32, "discrete actions are int32"
        else:
            assert isinstance(act_space, spaces.Box) and act_space.dtype == np.float32, \
                "continuous actions are a float32 Box"
        if buffers is None:
            buffers = allocate_buffers(obs_space, act_space, self.num_envs)
        for name, (shape, dtype) in buffer_specs(obs_space, act_space, self.num_envs).items():
            array = getattr(buffers, name)
            if array.shape != shape or array.dtype != dtype or not array.flags.c_contiguous:
                raise ValueError(f"buffer {name} must be a C-contiguous {dtype} array of shape "
                                 f"{shape}, got {array.dtype} {array.shape}")
            setattr(self, name, array)
        self.infos = {"final_observations": self.final_observations}

    def bind(self, vec_env_class, config):
        """Creates the C envs over this env's buffers."""
        n = self.num_envs
        num_actions = int(self.single_action_space.n) if isinstance(self.single_action_space, spaces.Discrete) else 0
        self.c_envs = vec_env_class(
            self.observations.reshape(n, -1), self.actions.reshape(n, -1), self.rewards,
            self.terminals.view(np.uint8), self.truncations.view(np.uint8),
            self.final_observations.reshape(n, -1), num_actions, config)

    def reset(self, seed=None, index_offset=0):
        """Resets every env; env i draws from (seed, index_offset + i), so a seed
        gives the same trajectories however the envs are split over workers."""
        if seed is None:
            seed = secrets.randbits(63)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.c_envs.reset(int(seed), int(index_offset))
        return self.observations, self.infos

    def step(self, actions):
        """Writes `actions` into the actions buffer (unless it is that buffer),
        steps every env, and returns the shared buffers."""
        if actions is not self.actions:
            self.write_actions(actions)
        self.c_envs.step()
        return self.observations, self.rewards, self.terminals, self.truncations, self.infos

    def write_actions(self, actions):
        actions = np.asarray(actions)
        if actions.shape != self.actions.shape:
            raise ValueError(f"actions must have shape {self.actions.shape} (num_envs, "
                             f"*action_space.shape), got {actions.shape}")
        if isinstance(self.single_action_space, spaces.Discrete):
            if actions.dtype.kind not in "iu":
                raise TypeError(f"discrete actions must be integers, got dtype {actions.dtype}")
            if actions.dtype != np.int32 and actions.size:
                # Check before the cast: a wide integer could wrap into range.
                low, high = actions.min(), actions.max()
                n = self.single_action_space.n
                if low < 0 or high >= n:
                    bad = low if low < 0 else high
                    raise ValueError(f"action {bad} is out of range: expected an integer in [0, {n})")
        elif actions.dtype.kind != "f":
            raise TypeError(f"continuous actions must be floats, got dtype {actions.dtype}")
        np.copyto(self.actions, actions, casting="unsafe")

    def log(self):
        """Mean episode return, length and score over the episodes finished
        since the last call ({} if none), and the count as `episodes`."""
        return self.c_envs.log()

    def close(self):
        self.c_envs = None

