"""Configs: configs/defaults.toml, overridden by configs/<env>.toml, overridden
by the command line (`--section.key value`). Every key must already exist in
the defaults (or, for [env], be one of the env's options) and keep its type, so
a typo or a wrong type is an error that names the valid keys."""
import tomllib
from importlib import resources
from types import SimpleNamespace

import puffer


def read_toml(name):
    """configs/<name>.toml as a dict, or {} if there is no such file."""
    path = resources.files("puffer.configs") / f"{name}.toml"
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def load_config(env_name, overrides=None):
    """The resolved config of `env_name`: a dict of sections, each a dict.
    `overrides` maps "section.key" to a value (a string from the command line
    is parsed as a TOML value)."""
    config = read_toml("defaults")
    config["env"] = puffer.env_options(env_name)
    for source, values in ((f"configs/{env_name}.toml", read_toml(env_name)),
                           ("the command line", overrides or {})):
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
    config[section][key] = check_type(dotted, value, default, source)


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
