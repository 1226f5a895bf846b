"""Configs: configs/defaults.toml, overridden by configs/<env>.toml, overridden
by a --config FILE (one that `puffer sweep --apply` wrote, say), overridden by
the command line (`--section.key value`). The [sweep] section is the sweep's
own (puffer.sweep), not part of a training config. Every key must already exist in
the defaults (or, for [env], be one of the env's options) and keep its type, so
a typo or a wrong type is an error that names the valid keys, and a number
out of its key's range (`RANGES`) or NaN is an error that names the range."""
import math
import re
import tomllib
from importlib import resources
from types import SimpleNamespace

import puffer
from puffer import gymnasium_env

# The allowed range (low, high; None: unbounded) of numeric keys of the PPO
# trainer, so that a bad value is an error here rather than a crash or a
# silently useless run later.
RANGES = {
    "vec.num_envs": (1, None), "vec.num_workers": (0, None), "vec.batch_size": (0, None),
    "vec.worker_timeout": (0.0, None),
    "train.total_steps": (1, None), "train.seed": (0, 2**32 - 1), "train.torch_threads": (1, None),
    "train.horizon": (1, None), "train.learning_rate": (0.0, None), "train.gamma": (0.0, 1.0),
    "train.gae_lambda": (0.0, 1.0), "train.update_epochs": (1, None),
    "train.num_minibatches": (1, None), "train.clip_coef": (0.0, None), "train.vf_coef": (0.0, None),
    "train.max_grad_norm": (0.0, None), "train.target_kl": (0.0, None), "train.kl_coef": (0.0, None),
    "train.checkpoint_interval": (1, None), "train.log_interval": (0.0, None),
    "policy.hidden_size": (1, None), "policy.num_layers": (1, None), "policy.num_heads": (1, None),
    "dt.return_scale": (0.0, None),
    "rlhf.prompt_len": (1, None), "rlhf.gen_len": (1, None), "rlhf.updates": (1, None),
    "rlhf.batch_size": (1, None), "rlhf.minibatch_size": (1, None), "rlhf.update_epochs": (1, None),
    "rlhf.learning_rate": (0.0, None), "rlhf.kl_coef": (0.0, None), "rlhf.target_kl": (0.0, None),
    "rlhf.kl_horizon": (1, None), "rlhf.gae_lambda": (0.0, 1.0), "rlhf.clip_coef": (0.0, None),
    "rlhf.vf_coef": (0.0, None), "rlhf.max_grad_norm": (0.0, None),
    "sweep.trial_seconds": (0.0, None), "sweep.prune_after": (0.0, 1.0), "sweep.startup_trials": (0, None),
    "sweep.seeds": (1, None),
    "sweep.seed": (0, 2**32 - 1),
}
# The form of string keys that are not checked where they are used.
FORMATS = {"train.device": (r"cpu|cuda(:\d+)?|mps", "cpu, cuda, cuda:N or mps"),
           "train.logger": (r"none|tensorboard|wandb", "none, tensorboard or wandb"),
           "sweep.metric": (r"mean_return_100|episode_return|episode_length|score",
                            "mean_return_100, episode_return, episode_length or score")}


def read_toml(name):
    """configs/<name>.toml as a dict, or {} if there is no such file."""
    path = resources.files("puffer.configs") / f"{name}.toml"
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def training_sections(values):
    """A config's sections less [sweep], which is the sweep's own."""
    return {section: v for section, v in values.items() if section != "sweep"}


def read_config_file(path):
    """A --config FILE as a dict."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as error:
        raise FileNotFoundError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {path} is not valid TOML: {error}") from None


def config_files(env_name, config_file=None):
    """(source, values) of each file over the defaults, in order: the env's
    own, then `config_file`."""
    env_source = f"configs/{env_name}.toml"
    env_values = read_toml(env_name)
    if env_name.startswith(puffer.GYM_PREFIX):
        # A Python env is trained as its C twin (if it has one) is trained.
        twin = gymnasium_env.twin_of(env_name)
        env_source = f"configs/{twin}.toml" if twin else "no file"
        env_values = {section: values for section, values in read_toml(twin).items()
                      if section != "env"} if twin else {}
    files = [(env_source, env_values)]
    if config_file is not None:
        files.append((str(config_file), read_config_file(config_file)))
    return files


def load_config(env_name, overrides=None, config_file=None):
    """The resolved training config of `env_name`: a dict of sections, each a
    dict. `overrides` maps "section.key" to a value (a string from the command
    line is parsed as a TOML value); `config_file` is a TOML file of sections
    layered between the env's file and `overrides`."""
    config = training_sections(read_toml("defaults"))
    config["env"] = puffer.env_options(env_name)
    if env_name.startswith(puffer.GYM_PREFIX):
        # A Python env steps far slower than a C one: spread it over worker processes.
        config["vec"]["backend"] = "multiprocessing"
    files = [(source, training_sections(values)) for source, values in config_files(env_name, config_file)]
    for source, values in files + [("the command line", overrides or {})]:
        for dotted, value in flatten(values).items():
            set_key(config, dotted, value, source)
    return config


def flatten(values):
    """{"train": {"seed": 1}} -> {"train.seed": 1}; already dotted keys pass through."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def set_key(config, dotted, value, source):
    section, _, key = dotted.partition(".")
    if section not in config or not key:
        raise KeyError(f"unknown config section {section!r} in {source}; "
                       f"sections: {', '.join(config)}")
    if key not in config[section]:
        raise KeyError(f"unknown config key {dotted!r} in {source}; valid keys of [{section}]: "
                       f"{', '.join(config[section])}")
    default = config[section][key]
    if isinstance(value, str) and not isinstance(default, str):
        value = parse_value(value)
    value = check_type(dotted, value, default, source)
    check_range(dotted, value, source)
    config[section][key] = value


def check_range(dotted, value, source):
    if dotted in FORMATS and not re.fullmatch(FORMATS[dotted][0], value):
        raise ValueError(f"config key {dotted!r} in {source} must be {FORMATS[dotted][1]}, got {value!r}")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"config key {dotted!r} in {source} must be a number, got nan")
    if dotted in RANGES and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = RANGES[dotted]
        if value < low or (high is not None and value > high):
            allowed = f"in [{low}, {high}]" if high is not None else f"at least {low}"
            raise ValueError(f"config key {dotted!r} in {source} must be {allowed}, got {value!r}")


def parse_value(text):
    """A command-line string as a TOML value ("3e-4", "true", "[1, 2]");
    anything that is not valid TOML stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def check_type(dotted, value, default, source):
    if default is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise TypeError(f"config key {dotted!r} in {source} must be of type {type(default).__name__} "
                        f"(like its default {default!r}), got {value!r}")
    return value


def as_namespace(config):
    """Sections as attributes: config.train.learning_rate."""
    return SimpleNamespace(**{name: SimpleNamespace(**values) for name, values in config.items()})
