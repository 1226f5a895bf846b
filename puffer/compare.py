"""`puffer compare cartpole`: puffer's PPO and Stable-Baselines3's PPO (with its
zoo's CartPole-v1 hyperparameters, when installed) on the same seeds, side by
side: training wall time and steps until the mean return of the last 100
episodes first reaches the threshold, and training SPS."""
import json
import statistics
import tempfile
import time
from collections import deque
from pathlib import Path

from puffer.config import load_config

THRESHOLDS = {"cartpole": 475.0}


def first_solved(metrics_path, threshold):
    """(wall_time, global_step) of the first metrics line whose
    mean_return_100 reaches `threshold`, or None."""
    with open(metrics_path) as f:
        for line in f:
            metrics = json.loads(line)
            if (metrics.get("mean_return_100") or float("-inf")) >= threshold:
                return metrics["wall_time"], metrics["global_step"]
    return None


def run_puffer(env_name, seed, threshold, overrides):
    from puffer.trainer.ppo import train
    config = load_config(env_name, {**overrides, "train.seed": seed, "train.log_interval": 1e9})
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train(env_name, config, run_dir, live=False)
        solved = first_solved(Path(run_dir) / "metrics.jsonl", threshold)
    return {"seed": seed, "solved": solved is not None, "time": solved and solved[0],
            "steps": solved and solved[1], "sps": summary["sps"]}


def run_sb3(seed, threshold, max_steps):
    """SB3 PPO with rl-zoo3's CartPole-v1 hyperparameters (8 envs x 32 steps,
    batch 256, 20 epochs, gamma 0.98, lambda 0.8, linear lr 1e-3 and clip 0.2)."""
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

    def linear(start):
        return lambda progress: progress * start

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu")
    callback = StopWhenSolved()
    callback.start = time.perf_counter()
    model.learn(max_steps, callback=callback)
    elapsed = time.perf_counter() - callback.start
    solved = callback.solved_at
    return {"seed": seed, "solved": solved is not None, "time": solved and solved[0],
            "steps": solved and solved[1], "sps": model.num_timesteps / elapsed}


def summarize(name, runs):
    times = [r["time"] for r in runs if r["solved"]]
    steps = [r["steps"] for r in runs if r["solved"]]
    return {"impl": name, "solved": f"{len(times)}/{len(runs)}",
            "median_time": statistics.median(times) if times else None,
            "min_time": min(times) if times else None, "max_time": max(times) if times else None,
            "median_steps": statistics.median(steps) if steps else None,
            "sps": statistics.median(r["sps"] for r in runs)}


def main_compare(env_name, seeds=10, sb3=True, overrides=None, print_fn=print):
    if env_name not in THRESHOLDS:
        raise ValueError(f"compare knows {', '.join(THRESHOLDS)}, not {env_name!r}")
    threshold = THRESHOLDS[env_name]
    overrides = overrides or {}
    rows = []
    runs = []
    for seed in range(seeds):
        runs.append(run_puffer(env_name, seed, threshold, overrides))
        r = runs[-1]
        print_fn(f"puffer seed {seed}: " + (f"solved in {r['time']:.2f} s, {r['steps']:,} steps"
                                            if r["solved"] else "not solved") + f", {r['sps']:,.0f} SPS")
    rows.append(summarize("puffer", runs))
    if sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print_fn("stable-baselines3 is not installed (pip install stable-baselines3): skipping it")
        else:
            runs = []
            for seed in range(seeds):
                runs.append(run_sb3(seed, threshold, max_steps=300_000))
                r = runs[-1]
                print_fn(f"sb3 seed {seed}: " + (f"solved in {r['time']:.2f} s, {r['steps']:,} steps"
                                                 if r["solved"] else "not solved") + f", {r['sps']:,.0f} SPS")
            rows.append(summarize("sb3", runs))
    print_fn(f"\n{env_name}: time until the mean return of the last 100 episodes reaches {threshold:g}")
    print_fn(f"{'impl':8} {'solved':>7} {'median s':>9} {'min s':>7} {'max s':>7} {'median steps':>13} "
             f"{'SPS':>10} {'time ratio':>11}")
    base = rows[0]["median_time"]
    for row in rows:
        ratio = row["median_time"] / base if base and row["median_time"] else None

        def fmt(value, spec):
            return format(value, spec) if value is not None else "n/a"
        print_fn(f"{row['impl']:8} {row['solved']:>7} {fmt(row['median_time'], '9.2f')} "
                 f"{fmt(row['min_time'], '7.2f')} {fmt(row['max_time'], '7.2f')} "
                 f"{fmt(row['median_steps'], '13,.0f')} {row['sps']:>10,.0f} {fmt(ratio, '10.1f') + 'x':>11}")
    return rows
