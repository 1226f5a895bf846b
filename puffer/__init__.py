"""puffer: fast reinforcement learning on environments written in C."""
import importlib
import inspect

# Env name -> its record. The CLI, `make`, the bench, compare and the configs
# (configs/<name>.toml) all key on these names. A record's keys:
#   entry      "module:Class", the env's class (the only key every env has);
#   gymnasium  the id of the Gymnasium env it reproduces: its Gymnasium id
#              takes that version, `puffer train gym:<id>` takes its config,
#              and bench and compare measure against it;
#   envpool    the id of EnvPool's, for bench;
#   numpy      "module:Class" of a numpy-vectorized one, for bench;
#   solved_at  the mean return of the last 100 episodes that counts as solved
#              (puffer compare).
ENVS = {
    "light_button": {"entry": "puffer.envs.probes.light_button.light_button:LightButton"},
    "constant_reward": {"entry": "puffer.envs.probes.constant_reward.constant_reward:ConstantReward"},
    "delayed_reward": {"entry": "puffer.envs.probes.delayed_reward.delayed_reward:DelayedReward"},
    "continuous_target": {"entry": "puffer.envs.probes.continuous_target.continuous_target:ContinuousTarget"},
    "cartpole": {"entry": "puffer.envs.cartpole.cartpole:CartPole", "gymnasium": "CartPole-v1",
                 "envpool": "CartPole-v1", "numpy": "puffer.bench:NumpyCartPole", "solved_at": 475.0},
    "lunar_lander": {"entry": "puffer.envs.lunar_lander.lunar_lander:LunarLander", "gymnasium": "LunarLander-v3",
                     "envpool": "LunarLander-v3", "solved_at": 200.0},
    "text": {"entry": "puffer.envs.text.text:Text"},
}

# "gym:ID" names Gymnasium env ID, hosted by puffer.gymnasium_env.GymnasiumVecEnv.
GYM_PREFIX = "gym:"


def env_class(name):
    """The env class registered under `name`; for "gym:ID" (any Gymnasium env
    id), the class that hosts Gymnasium envs."""
    if name.startswith(GYM_PREFIX):
        return gymnasium_env.GymnasiumVecEnv
    return load_entry(env_record(name)["entry"])


def env_record(name):
    """The ENVS record of env `name`."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; known envs: {', '.join(sorted(ENVS))}, "
                         f"or {GYM_PREFIX}ID for Gymnasium env ID")
    return ENVS[name]


def load_entry(entry):
    """The object that "module:Name" names."""
    module, name = entry.split(":")
    return getattr(importlib.import_module(module), name)


def env_options(name):
    """Name -> default of each keyword option the env takes."""
    if name.startswith(GYM_PREFIX):
        return gymnasium_env.gymnasium_options(name[len(GYM_PREFIX):])
    params = inspect.signature(env_class(name).__init__).parameters
    return {key: p.default for key, p in params.items() if key not in ("self", "num_envs", "buffers")}


def make(name, num_envs=1, backend="serial", num_workers=None, batch_size=None, timeout=None,
         autoreset_mode="SameStep", **env_kwargs):
    """`num_envs` copies of env `name`, stepped in-process in one C loop
    (backend "serial") or split over `num_workers` processes ("multiprocessing";
    with `batch_size` < `num_envs`, stepped a batch at a time, asynchronously:
    see `puffer.vector.Multiprocessing`; a worker silent for `timeout` seconds
    is an error). `name` "gym:ID" makes Gymnasium env
    ID, with `env_kwargs` its options: stepped in Python, give it processes.
    `autoreset_mode`: "SameStep" (AutoresetMode.SAME_STEP, what the trainers
    take) or "NextStep" (Gymnasium's default, what its vector wrappers take);
    see `puffer.vector.PufferEnv`."""
    from puffer.vector import check_autoreset_mode
    autoreset_mode = check_autoreset_mode(autoreset_mode)
    cls = env_class(name)
    unknown = set(env_kwargs) - set(env_options(name))
    if unknown:
        raise TypeError(f"{name} got unknown option(s) {', '.join(sorted(unknown))}; "
                        f"its options are: {', '.join(env_options(name)) or 'none'}")
    if name.startswith(GYM_PREFIX):
        env_kwargs = {"env_id": name[len(GYM_PREFIX):], "env_kwargs": env_kwargs}
    if backend == "serial":
        if num_workers is not None or batch_size is not None or timeout is not None:
            raise ValueError("num_workers, batch_size and timeout are only for backend='multiprocessing'")
        env = cls(num_envs=num_envs, **env_kwargs)
        env.set_autoreset_mode(autoreset_mode)
        return env
    if backend == "multiprocessing":
        from puffer.vector import Multiprocessing
        return Multiprocessing(cls, num_envs=num_envs, num_workers=num_workers, batch_size=batch_size,
                               timeout=timeout, env_kwargs=env_kwargs, autoreset_mode=autoreset_mode)
    raise ValueError(f"unknown backend {backend!r}; choose 'serial' or 'multiprocessing'")


# Every env above as a Gymnasium env: gymnasium.make("puffer/CartPole-v1").
from puffer import gymnasium_env  # noqa: E402  (it reads ENVS)

gymnasium_env.register_envs()
