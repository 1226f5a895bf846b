"""Fuzzing: random actions of every wrong kind (NaN, infinities, huge
integers, wrong shapes and dtypes, non-arrays) and random option values at
every env, and random config values at the trainer. Each must raise a clear
error (ValueError, TypeError, KeyError, FileNotFoundError) or be handled: the
env steps on with observations in its space and finite rewards. The fuzzing
runs in a subprocess, so a crash of the interpreter (a segfault in C) fails
the test instead of killing pytest. PUFFER_FUZZ_SEED picks another seed."""
import math
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from gymnasium import spaces

import puffer

CLEAR_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError)
SEED = int(os.environ.get("PUFFER_FUZZ_SEED", "0"))
NAMES = [*puffer.ENVS, "gym:CartPole-v1"]
NUM_ENVS = 4
# Values of every kind for options and config keys. Sizes stay small so that
# an accepted value cannot exhaust the machine (a million envs, say).
VALUES = [-(2**63), -1, 0, 1, 2, 3, 2**64, math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 1.0,
          1e30, True, False, "", "x", "nan", "1e3", None, [1], {"a": 1}, b"\x00"]


def bad_actions(env, rng):
    """Wrong or odd actions of every kind, each with a name."""
    space, n = env.single_action_space, env.num_envs
    shape = (n, *space.shape)
    good = (rng.integers(0, space.n, shape) if isinstance(space, spaces.Discrete)
            else rng.uniform(-1, 1, shape)).astype(space.dtype)
    cases = {"no actions": None, "a scalar": good.flat[0], "a list": good.tolist(),
             "a string": "0" * n, "an object array": good.astype(object),
             "non-contiguous": np.repeat(good, 2, axis=0)[::2]}
    for dtype in (np.bool_, np.int8, np.uint8, np.int64, np.uint64, np.float16, np.float64,
                  np.complex64, "U1", "datetime64[s]"):
        cases[f"dtype {np.dtype(dtype)}"] = good.astype(dtype)
    for bad_shape in [(), (n - 1, *space.shape), (n + 1, *space.shape), (n, 1, *space.shape),
                      (1, *shape), (0,), (n, 3)]:
        cases[f"shape {bad_shape}"] = np.resize(good, bad_shape)
    specials = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "1e30": 1e30, "-1e30": -1e30, "1e300": 1e300,
                "2**31": 2**31, "-2**31-1": -(2**31) - 1, "2**63-1": 2**63 - 1, "-2**63": -(2**63)}
    for label, value in specials.items():
        dtype = np.float64 if isinstance(value, float) else np.int64
        one = good.astype(dtype)
        one.flat[rng.integers(one.size)] = value
        cases[f"one {label} ({dtype.__name__})"] = one
        cases[f"all {label} ({dtype.__name__})"] = np.full(shape, value, dtype)
    return cases, good


def check_stepped(env, what):
    space = env.single_observation_space
    assert all(space.contains(row) for row in env.observations), f"{what}: observation out of space"
    assert np.isfinite(env.rewards).all(), f"{what}: reward not finite"


def fuzz_actions(name):
    """Every bad action at env `name`; returns the problems found."""
    rng = np.random.default_rng(SEED)
    env = puffer.make(name, num_envs=NUM_ENVS)
    env.reset(seed=SEED)
    problems = []
    cases, good = bad_actions(env, rng)
    for what, actions in cases.items():
        try:
            env.step(actions)
            check_stepped(env, f"{name} accepted {what}")
        except CLEAR_ERRORS as error:
            if not str(error):
                problems.append(f"{name}, {what}: {type(error).__name__} without a message")
        except Exception as error:  # noqa: BLE001 - anything else is what we look for
            problems.append(f"{name}, {what}: {type(error).__name__}: {error}")
        env.step(good)  # still usable
        check_stepped(env, f"{name} after {what}")
    env.close()
    return problems


def fuzz_options(name, count=60):
    """Random values for the env's options, alone and together; returns the problems found."""
    rng = np.random.default_rng(SEED)
    options = list(puffer.env_options(name))
    problems = []
    for i in range(count if options else 0):
        keys = rng.choice(options, size=min(len(options), 1 + i % 3), replace=False)
        kwargs = {str(key): VALUES[rng.integers(len(VALUES))] for key in keys}
        try:
            env = puffer.make(name, num_envs=2, **kwargs)
        except CLEAR_ERRORS:
            continue
        except Exception as error:  # noqa: BLE001
            problems.append(f"{name}({kwargs}): {type(error).__name__}: {error}")
            continue
        try:
            env.reset(seed=SEED)
            space = env.single_action_space
            for _ in range(30):
                actions = (rng.integers(0, space.n, 2) if isinstance(space, spaces.Discrete)
                           else rng.uniform(space.low, space.high, (2, *space.shape)))
                env.step(actions.astype(space.dtype))
                check_stepped(env, f"{name}({kwargs})")
        except Exception as error:  # noqa: BLE001 - made without error, it must step
            problems.append(f"{name}({kwargs}) made but then: {type(error).__name__}: {error}")
        env.close()
    return problems


def fuzz_trainer(count=100):
    """Random values for the PPO config keys, one to three at a time, each
    trained for a moment on light_button; returns the problems found."""
    from puffer.config import load_config
    from puffer.trainer.ppo import train
    rng = np.random.default_rng(SEED)
    base = {"train.torch_threads": 1, "train.total_steps": 64, "vec.num_envs": 4, "train.horizon": 4,
            "train.num_minibatches": 2, "train.log_interval": 1e9}
    keys = [f"{section}.{key}" for section, values in load_config("light_button").items()
            if section in ("vec", "train", "policy") for key in values]
    problems = []
    for i in range(count):
        fuzzed = {str(key): VALUES[rng.integers(len(VALUES))]
                  for key in rng.choice(keys, size=1 + i % 3, replace=False)}
        # A value as the command line would give it (a string) or as Python code would.
        if rng.random() < 0.5:
            fuzzed = {key: str(value) for key, value in fuzzed.items()}
        try:
            config = load_config("light_button", {**base, **fuzzed})
            if config["train"]["total_steps"] > 4096:
                continue  # valid, and too long to train here
            with tempfile.TemporaryDirectory() as run_dir:
                train("light_button", config, run_dir, live=False)
        except CLEAR_ERRORS:
            continue
        except Exception as error:  # noqa: BLE001
            problems.append(f"train with {fuzzed}: {type(error).__name__}: {error}")
    return problems


def run_fuzzer(*args):
    """Runs this file as a script in a fresh interpreter: a crash shows as a
    signal in the return code."""
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                            timeout=120)
    if result.returncode < 0:
        pytest.fail(f"the fuzzer crashed: {signal.Signals(-result.returncode).name} "
                    f"(seed {SEED}):\n{result.stderr[-3000:]}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_env(name):
    run_fuzzer("env", name)


def test_fuzz_trainer():
    run_fuzzer("trainer")


@pytest.mark.parametrize("key, value, allowed", [
    ("train.horizon", "0", "at least 1"), ("train.gamma", "1.5", r"in \[0.0, 1.0\]"),
    ("train.learning_rate", "nan", "a number"), ("train.device", "gpu", "cpu, cuda, cuda:N or mps")])
def test_config_values_out_of_range_name_the_range(key, value, allowed):
    from puffer.config import load_config
    with pytest.raises(ValueError, match=f"{key}' in the command line must be {allowed}, got"):
        load_config("light_button", {key: value})


if __name__ == "__main__":
    part, *rest = sys.argv[1:]
    found = fuzz_actions(rest[0]) + fuzz_options(rest[0]) if part == "env" else fuzz_trainer()
    print("\n".join(found) or "no problems")
    sys.exit(1 if found else 0)
