"""Drives every registered env of a sanitizer build of puffer (tests/test_asan.py).

    python tests/asan_driver.py --root COPY [--envs a,b] [--scale 1.0]

COPY is a copy of the project whose extensions were built in place with
PUFFER_SANITIZE=1; this script imports `puffer` from it, never from the
installed (editable) package, and must run with gcc's libasan and libubsan in
LD_PRELOAD. For each env in puffer.ENVS it:

  * steps about a million random valid actions, drawn from the env's
    single_action_space, over the default options and a few variants (bool
    options flipped, small and larger ints, plus hand-picked ones for known
    envs), with both many envs and a single env (num_envs=1, so that every
    buffer is its own allocation and any overrun hits an ASan redzone);
  * resets with several seeds and index offsets, mid-episode too, and reads
    env.log() every few steps;
  * checks that invalid actions (out of range, NaN/inf for Box, wrong dtype or
    shape) raise and leave the env's buffers untouched, while extreme finite
    Box actions, and integers, are accepted.

A registered env whose module does not exist yet is skipped (and reported as
such); any other import error fails. The last line of stdout is
`ASAN_DRIVER_SUMMARY {"covered": [...], "skipped": [...], "registered": ENVS}`.
"""
import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
import warnings

import numpy as np
from project_copy import use_copy

STEPS_PER_ENV = 1_000_000       # random valid actions per registered env, all variants together
BATCH = 1024                    # num_envs of the default-options run
VARIANT_BATCH = 64              # num_envs of the other variants (more steps each: long episodes)
SINGLE_STEPS = 2000             # steps of each num_envs=1 run
SEEDS = [0, 1, 12345, 2**32, 2**63 - 1, 2**64 - 1]
OFFSETS = [0, 7, 2**40]

# Hand-picked variants for known envs, on top of the generic ones. They must
# construct: a ValueError here is a failure, unlike for the generic guesses.
EXTRA_VARIANTS = {
    "light_button": [
        dict(hard=True, show_step=True, delay=3),
        dict(num_buttons=2, horizon=4, delay=3),          # truncations happen
        dict(num_buttons=2, horizon=1),
        dict(num_buttons=2, horizon=200, delay=64),       # largest delay: full ring buffer
        dict(num_buttons=2, horizon=100, delay=5, hard=True),
        dict(num_buttons=1024, horizon=3, show_step=True),
    ],
    "constant_reward": [dict(length=1), dict(length=300)],
    "delayed_reward": [dict(delay=0), dict(delay=1), dict(delay=100)],
    "continuous_target": [dict(horizon=1), dict(horizon=1000)],
    "text": [dict(reward="match"), dict(reward="match", split="eval"),
             dict(context=1, prompt_len=1, gen_len=1), dict(ngram_order=10, context=3, prompt_len=3, gen_len=200)],
}


def module_missing(module):
    """True when `module` (or a package above it) does not exist in the copy;
    an existing module that fails to import is not 'missing'."""
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


# ---------------------------------------------------------------------------
# Actions


def box_bounds(space):
    low = np.broadcast_to(np.asarray(space.low, np.float64), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float64), space.shape)
    return low, high


def random_actions(space, rng, num_envs):
    """Valid actions for `num_envs` envs, drawn from `space` (Discrete or Box)."""
    from gymnasium import spaces
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return rng.integers(start, start + int(space.n), size=(num_envs,), dtype=np.int32)
    if isinstance(space, spaces.Box):
        low, high = box_bounds(space)
        shape = (num_envs, *space.shape)
        finite_low, finite_high = np.where(np.isfinite(low), low, -1e3), np.where(np.isfinite(high), high, 1e3)
        return rng.uniform(finite_low, finite_high, size=shape).astype(np.float32)
    raise TypeError(f"unsupported action space {space!r}")


def constant_actions(space, num_envs, which):
    """All-low (which=0) or all-high (which=1) valid actions."""
    from gymnasium import spaces
    if isinstance(space, spaces.Discrete):
        value = int(space.start) + (int(space.n) - 1 if which else 0)
        return np.full((num_envs,), value, np.int32)
    low, high = box_bounds(space)
    bound = high if which else low
    bound = np.where(np.isfinite(bound), bound, 0.0)
    return np.broadcast_to(bound, (num_envs, *space.shape)).astype(np.float32)


# ---------------------------------------------------------------------------
# Checks


def check_buffers(env, name):
    n = env.num_envs
    assert env.observations.shape == (n, *env.single_observation_space.shape), name
    for buf in ("terminals", "truncations"):
        raw = getattr(env, buf).view(np.uint8)
        assert raw.max(initial=0) <= 1, f"{name}: {buf} holds a byte other than 0/1"
    assert np.isfinite(env.rewards).all(), f"{name}: non-finite reward"
    if env.observations.dtype.kind == "f":
        assert np.isfinite(env.observations).all(), f"{name}: non-finite observation"
        done = env.terminals | env.truncations
        if done.any():
            assert np.isfinite(env.final_observations[done]).all(), f"{name}: non-finite final observation"


def check_log(log, name):
    assert isinstance(log, dict), f"{name}: log() returned {type(log)}"
    if log:
        assert log["episodes"] >= 1, f"{name}: log {log}"
        for key, value in log.items():
            assert np.isfinite(value), f"{name}: log {key} = {value}"


def snapshot(env):
    return [getattr(env, b).copy() for b in
            ("observations", "rewards", "terminals", "truncations", "final_observations")]


def expect_rejected(env, actions, errors, what):
    """env.step(actions) must raise one of `errors` and change no buffer."""
    before = snapshot(env)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env.step(actions)
    except errors:
        pass
    else:
        raise AssertionError(f"{what}: accepted, expected {errors}")
    for old, new in zip(before, snapshot(env)):
        assert np.array_equal(old, new, equal_nan=True), f"{what}: rejected step changed a buffer"


def invalid_actions(cls, options, rng, name):
    """Invalid actions are rejected (ValueError for bad values, TypeError for a
    wrong dtype) without touching the envs; extreme finite Box actions are
    accepted."""
    from gymnasium import spaces
    env = cls(num_envs=3, **options)
    env.reset(seed=5)
    space = env.single_action_space
    shape = env.actions.shape
    checked = 0
    if isinstance(space, spaces.Discrete):
        lo, n = int(space.start), int(space.n)
        for bad in [lo - 1, lo + n, lo + n + 1, 2**31 - 1, -2**31]:
            for row in (0, 2):
                env.actions[:] = random_actions(space, rng, env.num_envs)
                env.actions[row] = bad
                expect_rejected(env, env.actions, ValueError, f"{name}: int32 action {bad} in row {row}")
                checked += 1
        for bad, dtype in [(lo - 1, np.int64), (lo + n, np.int64), (2**32 + lo, np.int64),
                           (-2**63, np.int64), (2**64 - 1, np.uint64), (lo + n, np.int16)]:
            actions = np.full(shape, lo, dtype)
            actions[-1] = bad
            expect_rejected(env, actions, ValueError, f"{name}: {np.dtype(dtype)} action {bad}")
            checked += 1
        expect_rejected(env, np.full(shape, lo, np.float32), (TypeError, ValueError),
                        f"{name}: float actions for a Discrete space")
        checked += 1
    elif isinstance(space, spaces.Box):
        count = int(np.prod(shape))
        for bad in [np.nan, np.inf, -np.inf]:
            for flat in sorted({0, count // 2, count - 1}):
                env.actions[:] = random_actions(space, rng, env.num_envs)
                env.actions.reshape(-1)[flat] = bad
                expect_rejected(env, env.actions, ValueError, f"{name}: Box action {bad} at {flat}")
                checked += 1
            actions = random_actions(space, rng, env.num_envs).astype(np.float64)
            actions.reshape(-1)[-1] = bad
            expect_rejected(env, actions, ValueError, f"{name}: float64 Box action {bad}")
            checked += 1
        actions = random_actions(space, rng, env.num_envs).astype(np.float64)
        actions.reshape(-1)[0] = 1e300  # finite in float64, inf in float32
        expect_rejected(env, actions, ValueError, f"{name}: float64 Box action 1e300")
        expect_rejected(env, np.zeros(shape, np.bool_), TypeError, f"{name}: boolean actions for a Box space")
        checked += 2
        # Finite values outside the bounds pass validation: the env must cope.
        f32 = np.finfo(np.float32)
        low, high = box_bounds(space)
        extremes = [0.0, -0.0, f32.max, -f32.max, 1e30, -1e30, f32.tiny, -f32.tiny, 1e-45, -1e-45,
                    *np.unique(low[np.isfinite(low)]), *np.unique(high[np.isfinite(high)])]
        for value in extremes:
            env.actions[:] = np.float32(value)
            env.step(env.actions)
            check_buffers(env, f"{name}: Box action {value}")
        for _ in range(50):
            env.actions[:] = rng.choice(np.array(extremes, np.float32), size=shape)
            env.step(env.actions)
            check_buffers(env, f"{name}: mixed extreme Box actions")
        for value in (0, -3, 2**62):  # integers are taken, as Gymnasium's Box envs take them
            env.step(np.full(shape, value, np.int64))
            check_buffers(env, f"{name}: integer Box action {value}")
    else:
        raise TypeError(f"{name}: unsupported action space {space!r}")
    expect_rejected(env, np.zeros((env.num_envs + 1, *shape[1:]), env.actions.dtype), ValueError,
                    f"{name}: actions of the wrong shape")
    checked += 1
    # Still works after all that.
    for _ in range(20):
        env.step(random_actions(space, rng, env.num_envs))
        check_buffers(env, f"{name}: after rejected actions")
    check_log(env.log(), name)
    env.close()
    return checked


# ---------------------------------------------------------------------------
# Random play


def variants(puffer, name):
    """Option dicts to run `name` with: the defaults, each bool option
    flipped (and all together), each int option at 0, 1 and 2 * default + 1,
    and EXTRA_VARIANTS. Returns (options, must_construct) pairs."""
    defaults = puffer.env_options(name)
    found = [({}, True)]
    bools = {k: v for k, v in defaults.items() if isinstance(v, bool)}
    for key, value in bools.items():
        found.append(({key: not value}, False))
    if len(bools) > 1:
        found.append(({k: not v for k, v in bools.items()}, False))
    for key, value in defaults.items():
        if isinstance(value, int) and not isinstance(value, bool):
            for candidate in (0, 1, 2 * value + 1):
                if candidate != value:
                    found.append(({key: candidate}, False))
    found += [(dict(v), True) for v in EXTRA_VARIANTS.get(name, [])]
    unique, seen = [], set()
    for options, must in found:
        key = tuple(sorted(options.items()))
        if key not in seen:
            seen.add(key)
            unique.append((options, must))
    return unique


def play(cls, options, num_envs, steps, rng, label):
    """`steps` steps of `num_envs` envs; returns the number of actions taken."""
    env = cls(num_envs=num_envs, **options)
    space = env.single_action_space
    seed_i = 0
    env.reset(seed=SEEDS[0])
    check_buffers(env, label)
    reset_every = max(steps // 3, 1)
    for t in range(steps):
        if t and t % reset_every == 0:  # mid-episode resets with other seeds and offsets
            seed_i += 1
            env.reset(seed=SEEDS[seed_i % len(SEEDS)], index_offset=OFFSETS[seed_i % len(OFFSETS)])
            check_buffers(env, label)
        phase = t % 10
        if phase == 9:  # constant actions: the bounds of the space
            actions = constant_actions(space, num_envs, t % 20 == 19)
        else:
            actions = random_actions(space, rng, num_envs)
        if phase % 2:
            env.actions[:] = actions  # write into the actions buffer directly
            env.step(env.actions)
        elif phase == 4 and actions.dtype == np.int32:
            env.step(actions.astype(np.int64))  # the range-checked cast path
        else:
            env.step(actions)
        check_buffers(env, label)
        if t % 50 == 49:
            check_log(env.log(), label)
    check_log(env.log(), label)
    env.close()
    return steps * num_envs


def cover(puffer, name, rng, scale):
    cls = puffer.env_class(name)
    # Constructed and freed without a reset: c_close on a never-reset env.
    del_env = cls(num_envs=2)
    del del_env
    for seed in SEEDS:  # many seeds/offsets on one env, back to back
        env = cls(num_envs=4)
        for offset in OFFSETS:
            env.reset(seed=seed, index_offset=offset)
            check_buffers(env, f"{name} reset({seed}, {offset})")
        env.step(random_actions(env.single_action_space, rng, 4))
        env.close()

    runs = []
    for options, must in variants(puffer, name):
        try:
            cls(num_envs=1, **options).close()
        except (ValueError, TypeError) as error:
            if must:
                raise
            print(f"  {name} {options}: options rejected by the constructor ({error}); skipped", flush=True)
            continue
        runs.append(options)

    # Half the budget to the defaults with BATCH envs, half shared by the other
    # variants (all of it to the defaults when there are none).
    budget = int(STEPS_PER_ENV * scale)
    others = len(runs) - 1
    default_steps = max(-(-(budget if not others else budget // 2) // BATCH), 1)
    variant_steps = max(-(-budget // 2 // max(others, 1) // VARIANT_BATCH), 1)
    single_steps = max(int(SINGLE_STEPS * scale), 1)
    total = 0
    for options in runs:
        label = f"{name} {options or 'defaults'}"
        start = time.perf_counter()
        n, steps = (BATCH, default_steps) if not options else (VARIANT_BATCH, variant_steps)
        taken = play(cls, options, n, steps, rng, label)
        taken += play(cls, options, 1, single_steps, rng, label + " num_envs=1")
        total += taken
        print(f"  {label}: {taken} actions in {time.perf_counter() - start:.1f}s", flush=True)

    checked = invalid_actions(cls, {}, rng, name)
    print(f"  {name}: {checked} invalid-action checks passed", flush=True)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the sanitizer-built copy of the project")
    parser.add_argument("--envs", default="", help="comma-separated subset of puffer.ENVS (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of steps")
    args = parser.parse_args()

    root = use_copy(args.root)
    import puffer
    names = [n for n in args.envs.split(",") if n] or list(puffer.ENVS)
    rng = np.random.default_rng(0)
    covered, skipped = [], []
    for name in names:
        module = puffer.ENVS[name]["entry"].split(":")[0]
        if module_missing(module):
            print(f"SKIPPED {name}: module {module} is missing", flush=True)
            skipped.append(name)
            continue
        start = time.perf_counter()
        print(f"{name}:", flush=True)
        total = cover(puffer, name, rng, args.scale)
        for mod in [m for m in sys.modules if m.startswith("puffer")]:
            assert os.path.realpath(sys.modules[mod].__file__).startswith(root + os.sep), mod
        print(f"COVERED {name}: {total} random actions in {time.perf_counter() - start:.1f}s", flush=True)
        covered.append(name)
    print("ASAN_DRIVER_SUMMARY " + json.dumps({"covered": covered, "skipped": skipped,
                                                     "registered": {n: r["entry"] for n, r in puffer.ENVS.items()}}), flush=True)


if __name__ == "__main__":
    main()
