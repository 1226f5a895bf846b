"""Runs a trained policy: one episode in each of `episodes` envs at once."""
import numpy as np
import torch

import puffer
from puffer.models import make_policy
from puffer.trainer.checkpoint import load_checkpoint


@torch.inference_mode()
def evaluate(env_name, checkpoint, episodes=100, deterministic=True, seed=0, device="cpu"):
    """Mean and std of the return and mean length over the first episode of
    each of `episodes` envs, and the mean score over every episode the envs
    finished meanwhile (the C log does not tell episodes apart)."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    saved = load_checkpoint(checkpoint, device)
    if saved["env_name"] != env_name:
        raise ValueError(f"checkpoint is for {saved['env_name']!r}, not {env_name!r}")
    config = saved["config"]
    env = puffer.make(env_name, num_envs=episodes, **config["env"])
    policy = make_policy(config["policy"], env.single_observation_space, env.single_action_space).to(device)
    policy.load_state_dict(saved["policy"])
    policy.eval()
    obs, _ = env.reset(seed=seed)
    state = policy.initial_state(episodes, device) if policy.is_recurrent else None
    starts = torch.ones(episodes, device=device)
    returns, lengths = np.zeros(episodes), np.zeros(episodes)
    running = np.ones(episodes, bool)
    while running.any():
        params, _, state = policy(torch.from_numpy(obs).to(device), state, starts)
        actions, _ = policy.head.sample(params, deterministic=deterministic)
        _, rewards, terminals, truncations, _ = env.step(actions.cpu().numpy())
        returns += rewards * running
        lengths += running
        done = terminals | truncations
        running &= ~done
        starts = torch.from_numpy(done).to(device).float()
    log = env.log()
    env.close()
    return {"episodes": episodes, "mean_return": float(returns.mean()), "std_return": float(returns.std()),
            "mean_length": float(lengths.mean()), "score": log.get("score")}
