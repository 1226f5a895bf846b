"""Gymnasium in both directions.

- Every puffer env is registered with Gymnasium as one single env,
  "puffer/<Class>-v<N>" (`gymnasium_id`): `import puffer` then
  `gymnasium.make("puffer/CartPole-v1")`, or without the import
  `gymnasium.make("puffer:puffer/CartPole-v1")`.
- `GymnasiumVecEnv` hosts N envs of any Gymnasium id behind the buffers of a
  `PufferEnv`, so that the multiprocessing backend and the trainer step them
  like a C env: `puffer.make("gym:LunarLander-v3")`, `puffer train gym:LunarLander-v3`.
"""
import importlib
import inspect

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator

import puffer
from puffer.vector import PufferEnv, check_action_values, resolve_seed, write_actions


def gymnasium_id(name):
    """The Gymnasium id of puffer env `name`: "puffer/CartPole-v1", "puffer/LightButton-v0"."""
    record = puffer.ENVS[name]
    cls_name = record["entry"].split(":")[1]
    version = record["gymnasium"].rsplit("-v", 1)[1] if "gymnasium" in record else "0"
    return f"puffer/{cls_name}-v{version}"


def register_envs():
    """Registers every env of `puffer.ENVS` with Gymnasium (again: a no-op)."""
    for name in puffer.ENVS:
        env_id = gymnasium_id(name)
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point="puffer.gymnasium_env:SingleEnv",
                               kwargs={"name": name})


def twin_of(env_name):
    """The puffer env that reproduces Gymnasium env `env_name` ("gym:ID"), or None."""
    return {f"{puffer.GYM_PREFIX}{record['gymnasium']}": name for name, record in puffer.ENVS.items()
            if "gymnasium" in record}.get(env_name)


class SingleEnv(gymnasium.Env):
    """One puffer env as a `gymnasium.Env`; `options` are the env's own
    (`puffer.env_options`). reset(seed=s) starts the same episode as
    `puffer.make(name).reset(seed=s)`; reset() draws the next seed from the
    env's `np_random`, so a run is reproducible from its first seed.

    The C env starts the next episode inside the step that ends one; this
    returns the ended episode's last observation instead, as Gymnasium
    expects, and a step after the end goes on in the new episode."""

    def __init__(self, name, render_mode=None, **options):
        self.env = puffer.make(name, num_envs=1, **options)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"{name} renders in modes {self.metadata['render_modes']} (or None), "
                             f"got render_mode={render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = self.env.single_observation_space
        self.action_space = self.env.single_action_space

    @property
    def metadata(self):
        """The puffer env's render modes and frame rate (a property, so that
        gymnasium.make leaves checking render_mode to the constructor)."""
        return {key: value for key, value in self.env.metadata.items() if key != "autoreset_mode"}

    def render(self):
        return None if self.render_mode is None else self.env.render(self.render_mode)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(2**63))
        observations, _ = self.env.reset(seed=seed, options=options)
        return observations[0].copy(), {}

    def step(self, action):
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape} "
                             f"(the action space {self.action_space}), got {action.shape}")
        observations, rewards, terminals, truncations, _ = self.env.step(action[None])
        ended = terminals[0] or truncations[0]
        observation = (self.env.final_observations if ended else observations)[0].copy()
        return observation, float(rewards[0]), bool(terminals[0]), bool(truncations[0]), {}

    def close(self):
        self.env.close()


def gymnasium_spec(env_id):
    """The EnvSpec of Gymnasium id `env_id`; "module:ID" imports `module` first
    (where a third-party env registers itself), as `gymnasium.make` does."""
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        importlib.import_module(module)
    try:
        return gymnasium.spec(env_id)
    except gymnasium.error.Error as error:
        raise ValueError(f"unknown Gymnasium env {env_id!r}: {error}") from None


def gymnasium_options(env_id):
    """Keyword -> default of each option of Gymnasium env `env_id`: its
    constructor's keywords with defaults (less render_mode), overridden by its
    registration's kwargs."""
    spec = gymnasium_spec(env_id)
    creator = spec.entry_point if callable(spec.entry_point) else load_env_creator(spec.entry_point)
    options = {p.name: p.default for p in inspect.signature(creator).parameters.values()
               if p.default is not inspect.Parameter.empty and p.name != "render_mode"}
    return {**options, **spec.kwargs}


def host_spaces(observation_space, action_space, env_id):
    """The spaces of the buffers that host a Gymnasium env: float observations
    as float32, Discrete actions as int32, Box actions as float32 (puffer's
    conventions); a ValueError for spaces the policies cannot handle."""
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(f"{env_id}: only Box observation spaces are supported, got "
                         f"{observation_space} (gymnasium.wrappers.FlattenObservation can make one)")
    if observation_space.dtype.kind == "f":
        observation_space = spaces.Box(observation_space.low.astype(np.float32),
                                       observation_space.high.astype(np.float32),
                                       dtype=np.float32)
    if isinstance(action_space, spaces.Discrete) and action_space.start == 0:
        return observation_space, spaces.Discrete(int(action_space.n), dtype=np.int32)
    if isinstance(action_space, spaces.Box):
        return observation_space, spaces.Box(action_space.low.astype(np.float32),
                                             action_space.high.astype(np.float32), dtype=np.float32)
    raise ValueError(f"{env_id}: only Discrete (starting at 0) and Box action spaces are "
                     f"supported, got {action_space}")


class GymnasiumVecEnv(PufferEnv):
    """`num_envs` copies of Gymnasium env `env_id` (made with `env_kwargs`)
    behind the buffers of a PufferEnv, stepped one after another in Python.

    As the C envs: an episode that ends resets in the same step (its last
    observation in `final_observations`), and `log()` gives the mean episode
    return and length since the last call. reset(seed) seeds env i with
    seed + index_offset + i, as Gymnasium's vector envs do, so a seed gives
    the trajectories of `gymnasium.make_vec(env_id, num_envs).reset(seed=seed)`.
    """

    def __init__(self, env_id, num_envs=1, env_kwargs=None, buffers=None):
        gymnasium_spec(env_id)  # a clear error for an unknown id, and imports its module
        env_kwargs = env_kwargs or {}
        first = gymnasium.make(env_id, **env_kwargs)
        self.single_observation_space, self.single_action_space = host_spaces(
            first.observation_space, first.action_space, env_id)
        super().__init__(num_envs, buffers)
        self.envs = [first] + [gymnasium.make(env_id, **env_kwargs) for _ in range(self.num_envs - 1)]
        # The env's own action dtype, when the buffer's (int32, float32) differs.
        self.env_action_dtype = first.action_space.dtype
        self.episode_returns = np.zeros(self.num_envs)
        self.episode_lengths = np.zeros(self.num_envs, np.int64)
        self.clear_log()

    def clear_log(self):
        self.finished, self.return_sum, self.length_sum = 0, 0.0, 0

    def reset(self, seed=None, options=None, index_offset=0):
        self.check_open()
        seed = resolve_seed(seed)
        for i, env in enumerate(self.envs):
            self.observations[i], _ = env.reset(seed=seed + index_offset + i, options=options)
        self.episode_returns[:] = 0
        self.episode_lengths[:] = 0
        self.was_reset = True
        return self.observations, {"final_observations": self.final_observations}

    def send(self, actions):
        self.check_reset("step")
        if actions is not self.actions:
            write_actions(self.single_action_space, self.actions, actions)
        check_action_values(self.single_action_space, self.actions)  # what the C binding checks
        for i, env in enumerate(self.envs):
            observation, reward, terminal, truncation, _ = env.step(
                self.actions[i].astype(self.env_action_dtype, copy=False))
            self.rewards[i], self.terminals[i], self.truncations[i] = reward, terminal, truncation
            self.episode_returns[i] += reward
            self.episode_lengths[i] += 1
            if terminal or truncation:
                self.final_observations[i] = observation
                self.finished += 1
                self.return_sum += self.episode_returns[i]
                self.length_sum += self.episode_lengths[i]
                self.episode_returns[i], self.episode_lengths[i] = 0.0, 0
                observation, _ = env.reset()
            self.observations[i] = observation

    def log(self):
        self.check_open()
        if not self.finished:
            return {}
        log = {"episode_return": float(self.return_sum / self.finished),
               "episode_length": float(self.length_sum / self.finished), "episodes": self.finished}
        self.clear_log()
        return log

    def close(self):
        for env in self.envs:
            env.close()
        self.closed, self.was_reset = True, False
