"""`puffer bench`: env-only steps per second through the Python API.

`bench_env` times a puffer env; `bench_reference` times a reference
implementation of the same env (Gymnasium, EnvPool, or the numpy CartPole
below) the same way: make it, reset, pre-draw a pool of random valid action
batches, warm up, then step through the pool until the time is up, reading the
clock only every few steps. SPS = env steps / elapsed seconds. Everything runs
in this one process, pinned to one core where the OS allows it.

`main_bench` runs puffer plus the requested references, prints a table and
returns the results; `puffer/cli.py` wires argparse to it.
"""
import json
import math
import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from gymnasium import spaces

import puffer

# The reference implementations bench measures against. An env's ENVS record
# holds the id each knows its equivalent by: `--compare X` is valid for an env
# only if its record has X (pufferlib, below, steps every env).
IMPLS = ("gymnasium", "envpool", "numpy", "pufferlib")
# PufferLib's vector (pufferlib-core) can step every puffer env: it is the
# same C env, here to measure what that vectorization costs or saves.
PUFFERLIB_ID = "pufferlib.vector.Serial"


def references(name):
    """Reference implementation -> its id for puffer env `name` (from its
    ENVS record)."""
    record = puffer.env_record(name)
    return {**{impl: record[impl] for impl in IMPLS if impl in record}, "pufferlib": PUFFERLIB_ID}

# Gymnasium's SyncVectorEnv steps its envs one by one in Python: a few
# thousand of them would take minutes to make and give the same per-env SPS.
GYMNASIUM_DEFAULT_MAX_ENVS = 64
POOL_SIZE = 64          # pre-drawn action batches, stepped through cyclically
CHECK_INTERVAL = 0.005  # seconds between clock reads in the timed loop (calibrated in warm-up)


class NumpyCartPole:
    """Gymnasium CartPole-v1 (euler integrator, 500-step limit) vectorized over
    `num_envs` with numpy in float32; like the C envs it auto-resets in the same
    step and keeps the last observation of a finished episode in
    `final_observations`. The numpy baseline that the C cartpole is measured against."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass, polemass_length = masspole + masscart, masspole * length
    x_threshold, theta_threshold, max_steps = 2.4, 12 * 2 * math.pi / 360, 500
    high = np.array([2 * x_threshold, np.inf, 2 * theta_threshold, np.inf], np.float32)
    single_observation_space = spaces.Box(-high, high, dtype=np.float32)
    single_action_space = spaces.Discrete(2, dtype=np.int32)

    def __init__(self, num_envs=1, seed=None):
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros((4, num_envs), np.float32)  # rows x, x_dot, theta, theta_dot
        self.steps = np.zeros(num_envs, np.int32)
        self.observations = np.zeros((num_envs, 4), np.float32)
        self.final_observations = np.zeros((num_envs, 4), np.float32)
        self.rewards = np.ones(num_envs, np.float32)
        self.infos = {"final_observations": self.final_observations}

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state[:] = self.rng.uniform(-0.05, 0.05, self.state.shape)
        self.steps[:] = 0
        self.observations[:] = self.state.T
        return self.observations, self.infos

    def step(self, actions):
        x, x_dot, theta, theta_dot = self.state
        force = np.where(np.asarray(actions) == 1, np.float32(self.force_mag), np.float32(-self.force_mag))
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + self.polemass_length * theta_dot * theta_dot * sin) / self.total_mass
        thetaacc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos * cos / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * cos / self.total_mass
        self.state = state = np.stack((x + self.tau * x_dot, x_dot + self.tau * xacc,
                                       theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc))
        self.steps += 1
        terminals = (np.abs(state[0]) > self.x_threshold) | (np.abs(state[2]) > self.theta_threshold)
        truncations = ~terminals & (self.steps >= self.max_steps)
        self.observations[:] = state.T
        done = terminals | truncations
        if done.any():
            self.final_observations[done] = self.observations[done]
            state[:, done] = self.rng.uniform(-0.05, 0.05, (4, int(done.sum())))
            self.steps[done] = 0
            self.observations[done] = state[:, done].T
        return self.observations, self.rewards, terminals, truncations, self.infos

    def close(self):
        pass


@contextmanager
def pinned_to_one_core(enabled=True):
    """Pins this thread (and the threads it starts) to one of the CPUs it may
    run on, restoring the old set on exit. Yields the CPU, or None where
    pinning is off or not possible."""
    before = None
    if enabled and hasattr(os, "sched_setaffinity"):
        try:
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {min(before)})
        except OSError:
            before = None
    try:
        yield min(before) if before else None
    finally:
        if before:
            os.sched_setaffinity(0, before)


def action_pool(action_space, num_envs, size=POOL_SIZE, seed=0):
    """`size` random valid action batches of shape (num_envs, *action_shape):
    int32 for Discrete, float32 for Box (infinite bounds drawn from [-1, 1])."""
    rng = np.random.default_rng(seed)
    if isinstance(action_space, spaces.Discrete):
        start, n = int(action_space.start), int(action_space.n)
        pool = rng.integers(start, start + n, (size, num_envs), dtype=np.int32)
    elif isinstance(action_space, spaces.Box):
        low = np.where(np.isfinite(action_space.low), action_space.low, -1.0)
        high = np.where(np.isfinite(action_space.high), action_space.high, 1.0)
        pool = rng.uniform(low, high, (size, num_envs, *action_space.shape)).astype(np.float32)
    else:
        raise TypeError(f"bench supports Discrete and Box action spaces, got {action_space}")
    return list(pool)  # a list of contiguous batches: indexing it costs nothing


def time_steps(step, pool, seconds, warmup=None):
    """Calls step(pool[i % len(pool)]) for `seconds` after a warm-up; returns
    (batches stepped, elapsed seconds). The warm-up also calibrates how many
    steps run between clock reads (about CHECK_INTERVAL seconds' worth)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    if warmup is None:
        warmup = min(0.5, max(0.05, 0.1 * seconds))
    size, i = len(pool), 0
    start = time.perf_counter()
    while True:
        step(pool[i % size])
        i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= warmup:
            break
    per_check = max(1, min(1024, int(CHECK_INTERVAL / (elapsed / i))))
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for j in range(steps, steps + per_check):
            step(pool[j % size])
        steps += per_check
        now = time.perf_counter()
        if now >= deadline:
            return steps, now - start


def _result(env, impl, ref_id, num_envs, steps=0, elapsed=0.0, note=""):
    return {"env": env, "impl": impl, "id": ref_id, "num_envs": num_envs, "steps": steps,
            "env_steps": steps * num_envs, "seconds": elapsed,
            "sps": steps * num_envs / elapsed if steps else None, "note": note}


def bench_env(name, num_envs=4096, seconds=3.0, pin=True, **env_kwargs):
    """Env-only SPS of puffer env `name` with `num_envs` envs in one process.
    Returns a dict: env, impl ("puffer"), id, num_envs, steps (batched steps),
    env_steps, seconds (elapsed), sps, note."""
    with pinned_to_one_core(pin):
        env = puffer.make(name, num_envs=num_envs, **env_kwargs)
        try:
            env.reset(seed=0)
            pool = action_pool(env.single_action_space, num_envs)
            steps, elapsed = time_steps(env.step, pool, seconds)
        finally:
            env.close()
    note = f"options {env_kwargs}" if env_kwargs else ""
    return _result(name, "puffer", puffer.ENVS[name]["entry"].split(":")[1], num_envs, steps, elapsed, note)


def check_compare(name, compare):
    """The distinct compare targets in `compare`, in order; a ValueError if one
    is unknown or has no reference implementation for env `name`."""
    targets = list(dict.fromkeys(compare or ()))
    for impl in targets:
        if impl not in IMPLS:
            raise ValueError(f"unknown compare target {impl!r}; choose from {', '.join(IMPLS)}")
        refs = references(name)
        if impl not in refs:
            raise ValueError(f"no {impl} reference for {name}; references for {name}: {', '.join(refs)}")
    return targets


def _make_reference(impl, ref_id, num_envs, name):
    """(env, single action space) for a reference of puffer env `name`;
    ImportError where its package is not installed or not usable here."""
    if impl == "numpy":
        cls = puffer.load_entry(ref_id)
        return cls(num_envs, seed=0), cls.single_action_space
    if impl == "gymnasium":
        import gymnasium
        try:
            env = gymnasium.make_vec(ref_id, num_envs=num_envs, vectorization_mode="sync")
        except gymnasium.error.DependencyNotInstalled as e:
            raise ImportError(f"gymnasium cannot make {ref_id}: {e}") from e
        return env, env.single_action_space
    if impl == "envpool":
        try:
            import envpool
        except Exception as e:  # not installed, or built against another numpy
            raise ImportError(f"envpool is not installed or not usable here "
                              f"({type(e).__name__}: {e}); try `pip install envpool`") from e
        try:
            env = envpool.make(ref_id, env_type="gymnasium", num_envs=num_envs,
                               batch_size=num_envs, num_threads=1)
        except Exception as e:
            raise ImportError(f"envpool is installed but cannot make {ref_id} "
                              f"({type(e).__name__}: {e})") from e
        return env, env.action_space
    if impl == "pufferlib":
        try:
            import pufferlib.vector
            from puffer.pufferlib_env import PufferlibEnv
        except ImportError as e:
            raise ImportError(f"pufferlib-core is not installed ({e}); try "
                              f"`pip install --no-deps pufferlib-core psutil`") from e
        env = pufferlib.vector.make(PufferlibEnv, env_kwargs={"name": name, "num_envs": num_envs},
                                    backend=pufferlib.vector.Serial, num_envs=1)
        return env, puffer.make(name).single_action_space
    raise ValueError(f"unknown reference implementation {impl!r}")


def bench_reference(name, impl, num_envs=4096, seconds=3.0, pin=True):
    """SPS of reference `impl` ("gymnasium", "envpool", "numpy") of puffer env
    `name`, timed like `bench_env`; a result with sps None and the reason in
    `note` where the reference's package is missing or unusable."""
    check_compare(name, [impl])
    ref_id = references(name)[impl]
    # The references warn about things that do not matter here (envpool's
    # fixed seeds, gymnasium's float64 bounds).
    with pinned_to_one_core(pin), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            env, action_space = _make_reference(impl, ref_id, num_envs, name)
        except ImportError as e:
            return _result(name, impl, ref_id, num_envs, note=str(e))
        try:
            env.reset(seed=0)
            pool = action_pool(action_space, num_envs)
            steps, elapsed = time_steps(env.step, pool, seconds)
        finally:
            env.close()
    return _result(name, impl, ref_id, num_envs, steps, elapsed)


def format_table(results):
    """A plain aligned text table of results: env, impl, num_envs, SPS and the
    puffer speedup (puffer SPS / this row's SPS, for the same env)."""
    puffer_sps = {r["env"]: r["sps"] for r in results if r["impl"] == "puffer" and r["sps"]}
    header = ("env", "impl", "id", "num_envs", "SPS", "puffer speedup")
    rows = []
    for r in results:
        base = puffer_sps.get(r["env"])
        rows.append((r["env"], r["impl"], r["id"], f"{r['num_envs']:,}",
                     f"{r['sps']:,.0f}" if r["sps"] else "n/a",
                     f"{base / r['sps']:.2f}x" if base and r["sps"] else "-"))
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    right = {3, 4, 5}

    def line(row):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def main_bench(name, num_envs=4096, seconds=3.0, compare=(), env_kwargs=None,
               gymnasium_num_envs=None, pin=True, print_fn=print):
    """Benchmarks puffer env `name` and the references in `compare`, prints
    the table (and notes) with `print_fn`, and returns the list of results,
    each with `puffer_speedup` (None where not measured). Gymnasium runs
    min(num_envs, 64) envs unless `gymnasium_num_envs` says otherwise."""
    env_kwargs = dict(env_kwargs or {})
    puffer.env_class(name)  # a clear error for an unknown env before any work
    targets = check_compare(name, compare)
    with pinned_to_one_core(pin) as cpu:
        print_fn(f"puffer bench {name}: {seconds:g} s per implementation, single process, "
                 + (f"pinned to CPU {cpu}" if cpu is not None else "not pinned"))
        results, notes = bench_with_references(name, targets, num_envs, seconds, env_kwargs,
                                               gymnasium_num_envs, pin)
    if targets and env_kwargs:
        notes.append(f"references run with their default settings; options {env_kwargs} apply to puffer only")
    print_fn(format_table(results))
    for note in dict.fromkeys(notes):
        print_fn(f"note: {note}")
    return results


def bench_all(num_envs=4096, seconds=3.0, pin=True, print_fn=print):
    """`main_bench` for every registered env against every reference it has,
    in one run and one table."""
    results, notes = [], []
    with pinned_to_one_core(pin) as cpu:
        print_fn(f"puffer bench --all: {seconds:g} s per implementation, single process, "
                 + (f"pinned to CPU {cpu}" if cpu is not None else "not pinned"))
        for name in puffer.ENVS:
            env_results, env_notes = bench_with_references(name, list(references(name)), num_envs,
                                                           seconds, {}, None, pin)
            results += env_results
            notes += env_notes
    print_fn(format_table(results))
    for note in dict.fromkeys(notes):
        print_fn(f"note: {note}")
    return results


def bench_with_references(name, targets, num_envs, seconds, env_kwargs, gymnasium_num_envs, pin):
    """(results, notes): puffer env `name`, then each reference in `targets`."""
    notes = []
    results = [bench_env(name, num_envs, seconds, pin=pin, **env_kwargs)]
    for impl in targets:
        n = num_envs
        if impl == "gymnasium":
            if gymnasium_num_envs is not None:
                n = gymnasium_num_envs
            elif num_envs > GYMNASIUM_DEFAULT_MAX_ENVS:
                n = GYMNASIUM_DEFAULT_MAX_ENVS
                notes.append(f"gymnasium ran {n} envs, not {num_envs:,}: its sync vector env steps "
                             f"envs one by one in Python, so more envs only take longer to make")
        results.append(bench_reference(name, impl, n, seconds, pin=pin))
    base = results[0]["sps"]
    for r in results:
        r["puffer_speedup"] = base / r["sps"] if base and r["sps"] else None
        if r["sps"] is None:
            notes.append(f"{r['impl']} skipped for {name}: {r['note']}")
    return results, notes

def bench_training(name, overrides=None, print_fn=print):
    """Trains `name` with its config (and `overrides`, "section.key" ->
    value) in a temporary run directory, then prints and returns the last
    metrics: training SPS, the shares of time in env, inference, copies and
    learning, and the policy's model FLOPs utilisation."""
    from puffer.config import load_config
    from puffer.trainer.ppo import train
    if name == "text":
        return bench_text_training(overrides, print_fn)
    config = load_config(name, {"train.log_interval": float("inf"), **(overrides or {})})
    with tempfile.TemporaryDirectory() as run_dir:
        train(name, config, run_dir, live=False)
        with open(Path(run_dir) / "metrics.jsonl") as f:
            metrics = json.loads(f.readlines()[-1])
    shares = ", ".join(f"{key} {100 * metrics[key]:.0f}%" for key in ("env", "inference", "copies", "learning"))
    print_fn(f"training {name}: {metrics['global_step']:,} steps in {metrics['wall_time']:.1f} s = "
             f"{metrics['sps']:,.0f} SPS on {config['train'].get('device')} with "
             f"{config['train']['torch_threads']} torch thread(s)\n"
             f"  time: {shares}\n"
             f"  policy: {metrics['flops_per_sample']:,.0f} FLOPs per training sample; device peak "
             f"{metrics['peak_flops'] / 1e9:,.1f} GFLOP/s (float32 matmul, measured); "
             f"MFU {100 * metrics['mfu']:.2f}%")
    return metrics


def bench_text_training(overrides=None, print_fn=print, pretrain_iters=20):
    """The text env's training: PPO against a reward model ([rlhf], from a
    fresh GPT and reward model of the [policy] size: speed does not depend on
    the weights) and, in the same run, pretraining's gradient steps on the
    same GPT; prints both in characters a second and their ratio."""
    import torch
    from puffer.config import as_namespace, load_config
    from puffer.tokenizer import load_corpus_tokens
    from puffer.trainer.checkpoint import save_checkpoint
    from puffer.trainer.pretrain import build_model, get_batch, make_optimizer, train_step
    from puffer.trainer.reward_model import RewardModel
    from puffer.trainer.rlhf import train_rlhf
    config = load_config("text", {"train.log_interval": float("inf"), "rlhf.updates": 8, **(overrides or {})})
    if config["rlhf"]["updates"] < 2:
        raise ValueError(f"puffer bench text --train times rlhf.updates after the first (its warm-up): "
                         f"it needs at least 2, got {config['rlhf']['updates']}")
    torch.set_num_threads(config["train"]["torch_threads"])
    tokenizer, train_tokens, _ = load_corpus_tokens()
    model = build_model(config, tokenizer.vocab_size)
    args = as_namespace(config).pretrain
    optimizer, rng = make_optimizer(model, args), np.random.default_rng(0)
    batches = [get_batch(train_tokens, args.batch_size, model.block_size, rng) for _ in range(pretrain_iters + 2)]
    for batch in batches[:2]:  # warm-up
        train_step(model, optimizer, batch)
    start = time.perf_counter()
    for batch in batches[2:]:
        train_step(model, optimizer, batch)
    pretrain_rate = pretrain_iters * args.batch_size * model.block_size / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as run_dir:
        init = Path(run_dir) / "gpt.pt"
        save_checkpoint(init, {"kind": "gpt", "config": config, "gpt": model.state_dict(), "vocab": tokenizer.chars})
        reward_model = RewardModel(build_model(config, tokenizer.vocab_size))
        history = train_rlhf(config, Path(run_dir) / "rlhf", init, reward_model, tokenizer, live=False)["history"]
    # The first update's rate includes the warm-up; the rest are steady.
    first, last = history[0], history[-1]
    ppo_rate = (last["global_step"] - first["global_step"]) / (last["wall_time"] - first["wall_time"])
    print_fn(f"text, PPO against a reward model: {ppo_rate:,.0f} characters/s written and learnt from "
             f"({config['rlhf']['batch_size']} episodes of {config['rlhf']['prompt_len']} + "
             f"{config['rlhf']['gen_len']} characters an update, {config['rlhf']['update_epochs']} epochs)\n"
             f"  pretraining the same GPT: {pretrain_rate:,.0f} characters/s; PPO / pretraining = "
             f"{ppo_rate / pretrain_rate:.3f}")
    return {"ppo_chars_per_second": ppo_rate, "pretrain_chars_per_second": pretrain_rate,
            "ratio": ppo_rate / pretrain_rate}
