"""Gymnasium in both directions.

- Every puffer env is registered with Gymnasium, "puffer/<Class>-v<N>"
  (`gymnasium_id`): `import puffer` then `gymnasium.make("puffer/CartPole-v1")`
  (one env), `gymnasium.make_vec("puffer/CartPole-v1", num_envs=N)` (N in one
  C loop), or without the import `gymnasium.make("puffer:puffer/CartPole-v1")`.
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
from gymnasium.vector import AutoresetMode

import puffer
from puffer.vector import (PufferEnv, check_action_values, check_env_id, reset_infos, resolve_seed,
                           write_actions)


def gymnasium_id(name):
    """The Gymnasium id of puffer env `name`: "puffer/CartPole-v1", "puffer/LightButton-v0"."""
    record = puffer.ENVS[name]
    cls_name = record["entry"].split(":")[1]
    version = record["gymnasium"].rsplit("-v", 1)[1] if "gymnasium" in record else "0"
    return f"puffer/{cls_name}-v{version}"


def register_envs():
    """Registers every env of `puffer.ENVS` with Gymnasium (again: a no-op):
    as a single env, and as a vector env (`make_vector`) that
    `gymnasium.make_vec` prefers. A twin of a Gymnasium env takes its
    episode limit and reward threshold."""
    for name, record in puffer.ENVS.items():
        env_id = gymnasium_id(name)
        if env_id not in gymnasium.registry:
            twin = gymnasium.spec(record["gymnasium"]) if "gymnasium" in record else None
            gymnasium.register(env_id, entry_point="puffer.gymnasium_env:SingleEnv",
                               vector_entry_point="puffer.gymnasium_env:make_vector", kwargs={"name": name},
                               max_episode_steps=twin and twin.max_episode_steps,
                               reward_threshold=twin and twin.reward_threshold)


def make_vector(name, num_envs=1, autoreset_mode=AutoresetMode.NEXT_STEP, max_episode_steps=None, **options):
    """`gymnasium.make_vec(ID, num_envs)` of a puffer id: puffer's own vector
    env, all `num_envs` in one C loop, in autoreset mode NEXT_STEP unless told
    otherwise, as Gymnasium's vector envs are. Its episode limit is the env's
    own: `max_episode_steps` (the spec's, which make_vec passes) must be it."""
    if max_episode_steps is not None:
        cls = puffer.env_class(name)
        limit = cls.max_episode_steps({**puffer.env_options(name), **options}) \
            if hasattr(cls, "max_episode_steps") else None
        if max_episode_steps != limit:
            raise ValueError(f"{gymnasium_id(name)} ends its episodes after {limit} steps in its C code, "
                             f"got max_episode_steps={max_episode_steps!r}: pass none, or {limit}")
    return puffer.make(name, num_envs=num_envs, autoreset_mode=autoreset_mode, **options)


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
    expects, and a step after the end goes on in the new episode.

    The env's options are its attributes, as Gymnasium's envs keep theirs
    (LunarLander's `continuous`, which Gymnasium's heuristic reads). A
    pickled or deep-copied env is made anew with the same options, its C
    state not carried: reset it, as after gymnasium.make."""

    def __init__(self, name, render_mode=None, **options):
        self.env = puffer.make(name, num_envs=1, **options)
        self.name, self.options = name, options
        for key, value in {**puffer.env_options(name), **options}.items():
            setattr(self, key, value)
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
        """Nothing to release but memory, freed with the env: as Gymnasium's
        envs without a window, it stays usable."""

    def __getstate__(self):
        return {"name": self.name, "render_mode": self.render_mode, "options": self.options}

    def __setstate__(self, state):
        self.__init__(state["name"], state["render_mode"], **state["options"])


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
    observation in `final_observations`), or in the next in autoreset mode
    NEXT_STEP (`set_autoreset_mode`), and `log()` gives the mean episode
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
        self.resetting = np.zeros(self.num_envs, bool)  # NEXT_STEP: envs to reset in the next step
        self.clear_log()

    def begin_next_step(self):
        pass  # send() reads the mode

    def clear_log(self):
        self.finished, self.return_sum, self.length_sum = 0, 0.0, 0

    def reset(self, seed=None, options=None, index_offset=0):
        self.check_open()
        seed = resolve_seed(seed)
        for i, env in enumerate(self.envs):
            self.observations[i], _ = env.reset(seed=seed + index_offset + i, options=options)
        self.episode_returns[:] = 0
        self.episode_lengths[:] = 0
        self.resetting[:] = False
        self.was_reset = True
        return self.observations, reset_infos(self.autoreset_mode, self.final_observations)

    def send(self, actions, env_id=None):
        self.check_reset("step")
        if env_id is not None:
            check_env_id(env_id, range(self.num_envs))
        if actions is not self.actions:
            write_actions(self.single_action_space, self.actions, actions)
        check_action_values(self.single_action_space, self.actions)  # what the C binding checks
        next_step = self.autoreset_mode is AutoresetMode.NEXT_STEP
        for i, env in enumerate(self.envs):
            if self.resetting[i]:
                self.observations[i], _ = env.reset()
                self.rewards[i], self.terminals[i], self.truncations[i] = 0.0, False, False
                self.resetting[i] = False
                continue
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
                if next_step:
                    self.resetting[i] = True
                else:
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
