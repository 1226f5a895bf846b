"""Decision transformer training (Chen et al., 2021), in the CleanRL style:
one file, every step in order.

Offline (`puffer train ENV --algo dt --data FILE`): supervised learning of
each step's action from windows of `context` steps of a dataset's episodes
(puffer collect), the model seeing at each step the return still to come.

Online (`--online`): no dataset. A short random warm-up fills a replay buffer
of episodes; then, over and over, a batch of envs plays one episode each,
conditioned on a target a few percent above the best return seen so far
(with a little noise), actions sampled from the logits divided by the
temperature; the episodes join the buffer (the oldest leave) and the model
takes some gradient steps on it.

Evaluation conditions every env on a target return and steps all of them in
one batch through the transformer's key/value cache; the return-to-go drops
by each reward received. Returns-to-go are undiscounted and divided by
dt.return_scale, the env's typical return.
"""
import json
import math
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces
from torch.nn import functional as F

import puffer
from puffer.config import as_namespace
from puffer.models.decision_transformer import DecisionTransformer, StepCache
from puffer.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from puffer.trainer.collect import collect, load_dataset
from puffer.trainer.dashboard import Dashboard
from puffer.trainer.device import seed_and_device
from puffer.trainer.episodes import play


def returns_to_go(rewards, episode_ends):
    """The undiscounted sum of the rewards from each step to the end of its
    episode; `episode_ends` are the indices of the episodes' last steps."""
    suffix = np.append(np.cumsum(rewards[::-1], dtype=np.float64)[::-1], 0.0)  # suffix[i] = rewards[i:].sum()
    lengths = np.diff(episode_ends, prepend=-1)
    return (suffix[:-1] - suffix[np.repeat(episode_ends, lengths) + 1]).astype(np.float32)


class Trajectories:
    """Episodes laid end to end (as puffer collect writes them), with what the
    model reads at each step: return-to-go, absolute timestep, previous action."""

    def __init__(self, observations, actions, rewards, terminals, truncations):
        ends = np.flatnonzero(terminals | truncations)
        if len(ends) == 0 or ends[-1] != len(rewards) - 1:
            raise ValueError("trajectories must be whole episodes, each ending on a terminal or truncation")
        lengths = np.diff(ends, prepend=-1)
        episode_start = np.repeat(ends - lengths + 1, lengths)
        self.returns = np.add.reduceat(rewards.astype(np.float64), ends - lengths + 1)
        self.lengths = lengths
        self.episode_start = torch.from_numpy(episode_start)
        self.timesteps = torch.from_numpy(np.arange(len(rewards)) - episode_start)
        self.returns_to_go = torch.from_numpy(returns_to_go(rewards, ends))
        self.observations = torch.from_numpy(np.ascontiguousarray(observations, np.float32))
        self.actions = torch.from_numpy(actions)
        # An episode's first step has no previous action: the model puts its start value there.
        self.prev_actions = torch.roll(self.actions, 1, dims=0)

    def __len__(self):
        return len(self.timesteps)

    def sample(self, batch_size, context, device):
        """Windows of `context` steps, each ending at a random step, within one
        episode: returns-to-go, observations, previous actions, timesteps,
        actions (the targets) and `valid` (False on the padding before an
        episode's first step)."""
        end = torch.randint(len(self), (batch_size,))
        index = end[:, None] - torch.arange(context - 1, -1, -1)
        valid = index >= self.episode_start[end][:, None]
        index = torch.where(valid, index, end[:, None])  # padding repeats a real step; the mask hides it
        batch = (self.returns_to_go, self.observations, self.prev_actions, self.timesteps, self.actions)
        return tuple(t[index].to(device) for t in batch) + (valid.to(device),)


def online_targets(best_return, count, increase, noise):
    """Targets for `count` online rollouts: `increase` (a fraction) above the
    best return seen so far, plus Gaussian noise of std `noise`. Never a
    far-off constant: a target the data has never come near means nothing
    to the model."""
    return best_return + abs(best_return) * increase + noise * np.random.randn(count)


def episode_limit(env_name, env_config):
    """The longest an episode of this env can be: the range of the timestep embedding."""
    cls = puffer.env_class(env_name)
    if not hasattr(cls, "max_episode_steps"):
        raise ValueError(f"{env_name} declares no episode limit (max_episode_steps) for the timestep embedding")
    return int(cls.max_episode_steps(env_config))


def follow_env(env_name, config):
    """Fills in the [dt] settings left to the env: eval_targets = [] means
    [the env's largest return] and return_scale = 0 that return, for the
    env's options as given (light_button's follows --env.horizon). An env that
    declares no largest return (puffer.vector.PufferEnv.max_return) needs
    them set; saying which is the error."""
    dt = config["dt"]
    if dt["eval_targets"] and dt["return_scale"]:
        return
    cls = puffer.env_class(env_name)
    largest = cls.max_return(config["env"]) if hasattr(cls, "max_return") else None
    if largest is None:
        unset = [key for key in ("eval_targets", "return_scale") if not dt[key]]
        raise ValueError(f"{env_name} declares no largest return to derive dt.{' and dt.'.join(unset)} from: "
                         f"set {' and '.join('--dt.' + key for key in unset)} (e.g. --dt.eval_targets [200.0] "
                         f"--dt.return_scale 300.0)")
    dt["eval_targets"] = dt["eval_targets"] or [largest]
    dt["return_scale"] = dt["return_scale"] or largest


def make_model(dt, env, max_timestep):
    space = env.single_action_space
    discrete = isinstance(space, spaces.Discrete)
    if not discrete and len(space.shape) != 1:
        raise ValueError(f"the decision transformer takes Discrete or 1-d Box actions, not {space}")
    model_args = dict(obs_size=int(np.prod(env.single_observation_space.shape)),
                      action_size=int(space.n) if discrete else space.shape[0], discrete=discrete,
                      layout=dt.layout, context=dt.context, max_timestep=max_timestep,
                      return_scale=dt.return_scale, hidden_size=dt.hidden_size, num_layers=dt.num_layers,
                      num_heads=dt.num_heads, dropout=dt.dropout)
    return DecisionTransformer(**model_args), model_args


def action_loss(model, predictions, actions, valid, entropy_coef=0.0):
    """Cross-entropy over the actions (discrete) or mean squared error
    (continuous), on real steps only. A discrete policy's entropy, times
    `entropy_coef`, is subtracted: online, a policy that fits its own
    rollouts exactly stops exploring and repeats its mistakes for ever."""
    if not model.discrete:
        return F.mse_loss(predictions[valid], actions[valid])
    logits = predictions[valid]
    entropy = -(F.softmax(logits, -1) * F.log_softmax(logits, -1)).sum(-1).mean()
    return F.cross_entropy(logits, actions[valid].long()) - entropy_coef * entropy


@torch.inference_mode()
def run_episodes(model, env, targets, temperature=None, seed=0, record=False):
    """One episode in each env of `env`, env i conditioned on the return
    targets[i], all stepped in one batch. Actions are the most likely, or,
    with a temperature, sampled from softmax(logits / temperature). Returns
    the returns and lengths, the mean entropy of the action distribution
    and the frequency of each action (discrete), the score from the env's
    log, and with `record` the episodes as Trajectories fields. Runs the
    model in eval mode (no dropout), whatever mode it came in."""
    model.eval()
    device = model.obs_mean.device
    n = env.num_envs
    targets = torch.as_tensor(targets, dtype=torch.float32, device=device).expand(n).clone()
    cache = StepCache(model, n, device)
    returns_to_go = targets.clone()
    prev_actions = torch.zeros(env.actions.shape, dtype=torch.from_numpy(env.actions).dtype, device=device)
    timesteps = torch.zeros(n, dtype=torch.long, device=device)
    entropy_sum, action_counts = 0.0, np.zeros(model.action_size if model.discrete else 0)

    def act(obs, rewards, starts, counting):
        nonlocal returns_to_go, timesteps, prev_actions, entropy_sum, action_counts
        # The target drops by each reward; an env that starts a new episode starts from its target again.
        starts = torch.from_numpy(starts).to(device)
        returns_to_go = torch.where(starts, targets, returns_to_go - torch.from_numpy(rewards).to(device))
        timesteps = torch.where(starts, 0, timesteps + 1)
        prediction = model.step(cache, returns_to_go, torch.from_numpy(obs).to(device), prev_actions, timesteps)
        if model.discrete:
            probs = F.softmax(prediction if temperature is None else prediction / temperature, dim=-1)
            actions = probs.argmax(-1) if temperature is None else torch.multinomial(probs, 1)[:, 0]
            live = torch.from_numpy(counting).to(device)
            entropy_sum += -(probs * probs.clamp_min(1e-12).log()).sum(-1)[live].sum().item()
            action_counts += np.bincount(actions[live].cpu().numpy(), minlength=model.action_size)
        else:
            space = env.single_action_space
            actions = prediction.clamp(torch.from_numpy(space.low).to(device), torch.from_numpy(space.high).to(device))
        prev_actions = actions.to(prev_actions.dtype)
        return actions.cpu().numpy().astype(env.actions.dtype)

    env.log()  # clear it: the score is of these episodes
    returns, lengths, columns = play(env, act, seed=seed, record=record)
    result = {"returns": returns, "lengths": lengths, "score": env.log().get("score"),
              "entropy": entropy_sum / lengths.sum() if model.discrete else None,
              "action_frequencies": action_counts / max(action_counts.sum(), 1)}
    if record:
        result["episodes"] = [{field: values[:lengths[i], i] for field, values in columns.items()} for i in range(n)]
    return result


def evaluate(model, env_name, env_config, targets, episodes, seed=0, temperature=None):
    """For each target return: the mean achieved return (and its std), mean
    length and score over `episodes` envs, each conditioned on it; actions
    the most likely, or sampled at `temperature`."""
    env = puffer.make(env_name, num_envs=episodes, **env_config)
    results = []
    for target in targets:
        r = run_episodes(model, env, float(target), temperature, seed=seed)
        results.append({"target": float(target), "mean_return": float(r["returns"].mean()),
                        "std_return": float(r["returns"].std()), "mean_length": float(r["lengths"].mean()),
                        "score": r["score"], "entropy": r["entropy"],
                        "action_frequencies": r["action_frequencies"].round(3).tolist()})
    env.close()
    return results


def train(env_name, config, run_dir, data=None, online=False, live=None):
    """Trains a decision transformer on `env_name` from the dataset at `data`,
    or online from its own rollouts, writing config.json, metrics.jsonl and
    checkpoint.pt into `run_dir`, then evaluates it at dt.eval_targets.
    Returns a summary dict."""
    if (data is None) == (not online):
        raise ValueError("the decision transformer trains from --data FILE (offline) or --online, one of the two")
    follow_env(env_name, config)
    cfg = as_namespace(config)
    dt, args = cfg.dt, cfg.train
    device = seed_and_device(args)

    env = puffer.make(env_name, num_envs=dt.online_envs, **config["env"])
    if online and not isinstance(env.single_action_space, spaces.Discrete):
        raise ValueError("--online samples actions from logits: it needs a discrete action space")
    model, model_args = make_model(dt, env, episode_limit(env_name, config["env"]))
    model.to(device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"env_name": env_name, "algo": "dt", "data": data,
                                                     "online": online, **config}, indent=2))
    if online:  # the warm-up: random episodes
        first = collect(env_name, dt.warmup_episodes, config["env"], num_envs=dt.online_envs, seed=args.seed)
        ends = np.flatnonzero(first["terminals"] | first["truncations"])
        starts = np.concatenate([[0], ends[:-1] + 1])
        buffer = deque(({k: v[a:b + 1] for k, v in first.items()} for a, b in zip(starts, ends)),
                       maxlen=dt.buffer_episodes)  # full: the oldest episodes leave
        dataset = first
    else:
        dataset = load_dataset(data, env_name, config["env"], env)
    trajectories = Trajectories(**dataset)
    # Observations are standardised by the (first) data's statistics.
    model.obs_mean.copy_(trajectories.observations.mean(0))
    model.obs_std.copy_(trajectories.observations.std(0).clamp_min(1e-6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=dt.learning_rate, weight_decay=dt.weight_decay)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / dt.warmup_steps))

    eval_keys = [f"return@{t:g}" for t in dt.eval_targets]
    sections = {"progress": ["step", "wall_time", "steps_per_s", "episodes"],
                "loss": ["loss", "learning_rate"],
                "evaluation": [*eval_keys, "eval_length", "eval_score", "eval_entropy", "eval_actions"]}
    if online:
        sections["rollouts"] = ["best_return", "target", "rollout_return", "rollout_length", "rollout_entropy",
                                "rollout_actions"]
    else:
        sections["data"] = ["data_episodes", "data_mean_return", "data_max_return"]
    dashboard = Dashboard(f"puffer train {env_name} --algo dt{' --online' if online else ''}",
                          run_dir / "metrics.jsonl", live=live, sections=sections,
                          logger=config["train"]["logger"], config={"env_name": env_name, **config})
    best_return = -math.inf
    episodes_seen = len(trajectories.lengths)
    step, iteration, losses, metrics, results = 0, 0, [], {}, []
    start = last_shown = time.perf_counter()

    def train_steps(count):
        nonlocal step
        model.train()
        for _ in range(count):
            rtg, obs, prev, timesteps, actions, valid = trajectories.sample(dt.batch_size, dt.context, device)
            loss = action_loss(model, model(rtg, obs, prev, timesteps, valid), actions, valid,
                               dt.online_entropy_coef if online else 0.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), dt.max_grad_norm)
            optimizer.step()
            warmup.step()
            losses.append(loss.item())
            step += 1

    def record(extra, last=False):
        nonlocal metrics, last_shown
        wall_time = time.perf_counter() - start
        metrics = {"step": step, "wall_time": wall_time, "steps_per_s": step / max(wall_time, 1e-9),
                   "episodes": episodes_seen, "loss": float(np.mean(losses)) if losses else None,
                   "learning_rate": optimizer.param_groups[0]["lr"], **extra}
        losses.clear()
        dashboard.write(metrics)
        if last or time.perf_counter() - last_shown >= args.log_interval:
            dashboard.show(metrics)
            last_shown = time.perf_counter()

    def evaluation():
        nonlocal results
        results = evaluate(model, env_name, config["env"], dt.eval_targets, dt.eval_episodes, seed=args.seed + 1,
                           temperature=dt.eval_temperature or None)
        top = results[-1]
        return {**{key: r["mean_return"] for key, r in zip(eval_keys, results)}, "eval_length": top["mean_length"],
                "eval_score": top["score"], "eval_entropy": top["entropy"],
                "eval_actions": "/".join(f"{p:.2f}" for p in top["action_frequencies"])}

    try:
        if online:
            best_return = max(best_return, float(trajectories.returns.max()))
            while True:
                iteration += 1
                # 1. Rollout: one episode per env, aiming a little above the best return seen.
                targets = online_targets(best_return, dt.online_envs, dt.target_increase,
                                         dt.target_noise * dt.return_scale)
                rollout = run_episodes(model, env, targets, temperature=dt.temperature,
                                       seed=args.seed + 1000 * iteration, record=True)
                buffer.extend(rollout["episodes"])
                episodes_seen += dt.online_envs
                best_return = max(best_return, float(rollout["returns"].max()))
                # 2. Learning on the replay buffer.
                trajectories = Trajectories(**{k: np.concatenate([e[k] for e in buffer]) for k in dataset})
                train_steps(dt.updates_per_rollout)
                extra = {"best_return": best_return, "target": float(targets.mean()),
                         "rollout_return": float(rollout["returns"].mean()),
                         "rollout_length": float(rollout["lengths"].mean()), "rollout_entropy": rollout["entropy"],
                         "rollout_actions": "/".join(f"{p:.2f}" for p in rollout["action_frequencies"])}
                last = episodes_seen >= dt.online_episodes
                if iteration % dt.eval_interval == 0 or last:
                    extra.update(evaluation())
                    last = last or (dt.stop_at_target and results[-1]["mean_return"] >= dt.eval_targets[-1])
                record(extra, last)
                if last:
                    break
        else:
            data_stats = {"data_episodes": episodes_seen, "data_mean_return": float(trajectories.returns.mean()),
                          "data_max_return": float(trajectories.returns.max())}
            while step < dt.train_steps:
                train_steps(min(dt.eval_interval, dt.train_steps - step))
                record({**data_stats, **evaluation()}, last=step == dt.train_steps)
    except KeyboardInterrupt:
        dashboard.show(metrics)
        print("interrupted: saving a final checkpoint")
    finally:
        checkpoint = run_dir / CHECKPOINT_NAME
        save_checkpoint(checkpoint, {"algo": "dt", "env_name": env_name, "config": config,
                                     "model_args": model_args, "model": model.state_dict(),
                                     "optimizer": optimizer.state_dict(), "step": step,
                                     "episodes": episodes_seen, "wall_time": time.perf_counter() - start})
        dashboard.close()
        env.close()
    return {"env_name": env_name, "steps": step, "episodes": episodes_seen, "wall_time": metrics.get("wall_time"),
            "best_return": best_return if online else None, "evaluation": results,
            "checkpoint": str(checkpoint), "run_dir": str(run_dir)}


def load_model(checkpoint, device="cpu", env_name=None):
    """The decision transformer of a `--algo dt` checkpoint (for `env_name`,
    if given), and its checkpoint."""
    saved = load_checkpoint(checkpoint, device, env_name)
    if saved.get("algo") != "dt":
        raise ValueError(f"{checkpoint} is not a decision transformer checkpoint (puffer train ENV --algo dt)")
    model = DecisionTransformer(**saved["model_args"]).to(device)
    model.load_state_dict(saved["model"])
    return model.eval(), saved
