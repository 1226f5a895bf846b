"""puffer: fast reinforcement learning on environments written in C."""
import importlib
import inspect

# Env name -> "module:Class". The CLI, `make`, the bench and the configs
# (configs/<name>.toml) all key on these names.
ENVS = {
    "light_button": "puffer.envs.probes.light_button.light_button:LightButton",
    "constant_reward": "puffer.envs.probes.constant_reward.constant_reward:ConstantReward",
    "delayed_reward": "puffer.envs.probes.delayed_reward.delayed_reward:DelayedReward",
    "continuous_target": "puffer.envs.probes.continuous_target.continuous_target:ContinuousTarget",
    "cartpole": "puffer.envs.cartpole.cartpole:CartPole",
    "lunar_lander": "puffer.envs.lunar_lander.lunar_lander:LunarLander",
    "text": "puffer.envs.text.text:Text",
}

# "gym:ID" names Gymnasium env ID, hosted by puffer.gymnasium_env.GymnasiumVecEnv.
GYM_PREFIX = "gym:"


def env_class(name):
    """The env class registered under `name`; for "gym:ID" (any Gymnasium env
    id), the class that hosts Gymnasium envs."""
    if name.startswith(GYM_PREFIX):
        return gymnasium_env.GymnasiumVecEnv
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; known envs: {', '.join(sorted(ENVS))}, "
                         f"or {GYM_PREFIX}ID for Gymnasium env ID")
    module, cls = ENVS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def env_options(name):
    """Name -> default of each keyword option the env takes."""
    if name.startswith(GYM_PREFIX):
        return gymnasium_env.gymnasium_options(name[len(GYM_PREFIX):])
    params = inspect.signature(env_class(name).__init__).parameters
    return {key: p.default for key, p in params.items() if key not in ("self", "num_envs", "buffers")}


def make(name, num_envs=1, backend="serial", num_workers=None, batch_size=None, timeout=None, **env_kwargs):
    """`num_envs` copies of env `name`, stepped in-process in one C loop
    (backend "serial") or split over `num_workers` processes ("multiprocessing";
    with `batch_size` < `num_envs`, stepped a batch at a time, asynchronously:
    see `puffer.vector.Multiprocessing`; a worker silent for `timeout` seconds
    is an error). `name` "gym:ID" makes Gymnasium env
    ID, with `env_kwargs` its options: stepped in Python, give it processes."""
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
        return cls(num_envs=num_envs, **env_kwargs)
    if backend == "multiprocessing":
        from puffer.vector import Multiprocessing
        return Multiprocessing(cls, num_envs=num_envs, num_workers=num_workers, batch_size=batch_size,
                               timeout=timeout, env_kwargs=env_kwargs)
    raise ValueError(f"unknown backend {backend!r}; choose 'serial' or 'multiprocessing'")


# Every env above as a Gymnasium env: gymnasium.make("puffer/CartPole-v1").
from puffer import gymnasium_env  # noqa: E402  (it reads ENVS)

gymnasium_env.register_envs()
