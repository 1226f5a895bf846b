"""`puffer compare ENV`: puffer's PPO on ENV and Stable-Baselines3's PPO (with
rl-baselines3-zoo's hyperparameters, when installed) on Gymnasium's original
of it, on the same seeds, side by side: training wall time and steps until the
mean return of the last 100 episodes first reaches the threshold, and training
SPS. Then transfer: the last seed's policies swapped, puffer's run in
Gymnasium's env and SB3's in puffer's (same observations and actions)."""
import json
import statistics
import tempfile
import time
from collections import deque
from pathlib import Path

import puffer
from puffer.config import load_config

def linear(start):
    """SB3 schedule: `start` decayed linearly to 0 over training."""
    return lambda progress: progress * start


# rl-baselines3-zoo's PPO hyperparameters (hyperparams/ppo.yml) for Gymnasium's
# original of each env, and how many steps SB3 gets to reach the threshold.
SB3_ZOO = {
    "cartpole": dict(env_id="CartPole-v1", n_envs=8, max_steps=300_000, ppo=dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=linear(1e-3), clip_range=linear(0.2))),
    "lunar_lander": dict(env_id="LunarLander-v3", n_envs=16, max_steps=2_000_000, ppo=dict(
        n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999, n_epochs=4, ent_coef=0.01)),
}


def first_solved(metrics_path, threshold):
    """(wall_time, global_step) of the first metrics line whose
    mean_return_100 reaches `threshold`, or None."""
    with open(metrics_path) as f:
        for line in f:
            metrics = json.loads(line)
            if (metrics.get("mean_return_100") or float("-inf")) >= threshold:
                return metrics["wall_time"], metrics["global_step"]
    return None


def run_puffer(env_name, seed, threshold, overrides, config_file=None):
    from puffer.trainer.ppo import train
    config = load_config(env_name, {**overrides, "train.seed": seed, "train.log_interval": 1e9}, config_file)
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train(env_name, config, run_dir, live=False)
        solved = first_solved(Path(run_dir) / "metrics.jsonl", threshold)
        act = puffer_actor(env_name, run_dir)
    return {"seed": seed, "solved": solved is not None, "time": solved and solved[0],
            "steps": solved and solved[1], "sps": summary["sps"], "act": act}


def puffer_actor(env_name, checkpoint):
    """A checkpoint's greedy policy (feed-forward) as a function of a batch of
    observations."""
    import numpy as np
    import torch

    from puffer.trainer.checkpoint import load_checkpoint, load_policy
    saved = load_checkpoint(checkpoint)
    env = puffer.make(env_name, num_envs=1, **saved["config"]["env"])
    policy = load_policy(saved, env)
    env.close()

    @torch.inference_mode()
    def act(obs):
        obs = torch.as_tensor(np.asarray(obs, np.float32))
        params, _, _ = policy(obs, None, torch.ones(len(obs)))
        return policy.head.sample(params, deterministic=True)[0].numpy()
    return act


def run_sb3(env_name, seed, threshold):
    """SB3 PPO with rl-zoo3's hyperparameters (SB3_ZOO) on Gymnasium's env."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class StopWhenSolved(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns, self.solved_at = deque(maxlen=100), None

        def _on_step(self):
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
            if len(self.returns) == 100 and statistics.fmean(self.returns) >= threshold:
                self.solved_at = (time.perf_counter() - self.start, self.num_timesteps)
                return False
            return True

    zoo = SB3_ZOO[env_name]
    torch.set_num_threads(1)  # as puffer's small policies train (train.torch_threads)
    env = make_vec_env(zoo["env_id"], n_envs=zoo["n_envs"], seed=seed)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", **zoo["ppo"])
    callback = StopWhenSolved()
    callback.start = time.perf_counter()
    model.learn(zoo["max_steps"], callback=callback)
    elapsed = time.perf_counter() - callback.start
    solved = callback.solved_at
    return {"seed": seed, "solved": solved is not None, "time": solved and solved[0],
            "steps": solved and solved[1], "sps": model.num_timesteps / elapsed,
            "act": lambda obs: model.predict(obs, deterministic=True)[0]}


def mean_return(env, act, seed):
    """Mean return of the first episode in each of a vector env's envs (a
    puffer env or a Gymnasium vector env), with actions from act(obs)."""
    from puffer.trainer.episodes import play
    returns = play(env, lambda obs, *_: act(obs), seed=seed)[0]
    env.close()
    return float(returns.mean())


def transfer(env_name, puffer_act, sb3_act, episodes=100, seed=0):
    """Mean returns over `episodes` episodes of puffer's policy in Gymnasium's
    env and of SB3's (trained in Gymnasium's) in puffer's."""
    import gymnasium
    gym_env = gymnasium.make_vec(SB3_ZOO[env_name]["env_id"], num_envs=episodes, vectorization_mode="sync")
    return {"puffer_in_gymnasium": mean_return(gym_env, puffer_act, seed),
            "sb3_in_puffer": mean_return(puffer.make(env_name, num_envs=episodes), sb3_act, seed)}


def summarize(name, runs):
    times = [r["time"] for r in runs if r["solved"]]
    steps = [r["steps"] for r in runs if r["solved"]]
    return {"impl": name, "solved": f"{len(times)}/{len(runs)}",
            "median_time": statistics.median(times) if times else None,
            "min_time": min(times) if times else None, "max_time": max(times) if times else None,
            "median_steps": statistics.median(steps) if steps else None,
            "sps": statistics.median(r["sps"] for r in runs)}


def main_compare(env_name, seeds=10, sb3=True, overrides=None, transfer_episodes=100, config_files=None,
                 print_fn=print):
    """The table of puffer (with each of `config_files` over the env's config,
    interleaved seed by seed, or the env's config alone) and SB3."""
    solvable = [name for name, record in puffer.ENVS.items() if "solved_at" in record]
    if env_name not in solvable:
        raise ValueError(f"compare knows {', '.join(solvable)} (the envs whose record in puffer.ENVS has a "
                         f"solved_at), not {env_name!r}")
    threshold = puffer.ENVS[env_name]["solved_at"]
    overrides = overrides or {}
    variants = {f"puffer {Path(f).stem}": f for f in config_files} if config_files else {"puffer": None}
    runs = {name: [] for name in variants}
    for seed in range(seeds):
        for name, config_file in variants.items():
            runs[name].append(run_puffer(env_name, seed, threshold, overrides, config_file))
            r = runs[name][-1]
            print_fn(f"{name} seed {seed}: " + (f"solved in {r['time']:.2f} s, {r['steps']:,} steps"
                                                if r["solved"] else "not solved") + f", {r['sps']:,.0f} SPS")
    rows = [summarize(name, variant_runs) for name, variant_runs in runs.items()]
    puffer_runs = runs[next(iter(runs))]
    if sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print_fn("stable-baselines3 is not installed (pip install stable-baselines3): skipping it")
        else:
            sb3_runs = []
            for seed in range(seeds):
                sb3_runs.append(run_sb3(env_name, seed, threshold))
                r = sb3_runs[-1]
                print_fn(f"sb3 seed {seed}: " + (f"solved in {r['time']:.2f} s, {r['steps']:,} steps"
                                                 if r["solved"] else "not solved") + f", {r['sps']:,.0f} SPS")
            rows.append(summarize("sb3", sb3_runs))
            if transfer_episodes:
                moved = transfer(env_name, puffer_runs[-1]["act"], sb3_runs[-1]["act"], transfer_episodes)
                print_fn(f"transfer (seed {seeds - 1}, {transfer_episodes} episodes each, greedy): puffer's policy "
                         f"in Gymnasium's {SB3_ZOO[env_name]['env_id']}: mean return "
                         f"{moved['puffer_in_gymnasium']:.1f}; SB3's (trained there) in puffer's {env_name}: "
                         f"{moved['sb3_in_puffer']:.1f}")
    print_fn(f"\n{env_name}: time until the mean return of the last 100 episodes reaches {threshold:g}")
    width = max(8, *(len(row["impl"]) for row in rows))
    print_fn(f"{'impl':{width}} {'solved':>7} {'median s':>9} {'min s':>7} {'max s':>7} {'median steps':>13} "
             f"{'SPS':>10} {'time ratio':>11}")
    base = rows[0]["median_time"]
    for row in rows:
        ratio = row["median_time"] / base if base and row["median_time"] else None

        def fmt(value, spec):
            return format(value, spec) if value is not None else "n/a"
        print_fn(f"{row['impl']:{width}} {row['solved']:>7} {fmt(row['median_time'], '9.2f')} "
                 f"{fmt(row['min_time'], '7.2f')} {fmt(row['max_time'], '7.2f')} "
                 f"{fmt(row['median_steps'], '13,.0f')} {row['sps']:>10,.0f} {fmt(ratio, '10.2f') + 'x':>11}")
    return rows
