"""Runs a trained policy: one episode in each of `episodes` envs at once,
optionally rendering the first env's episode."""
import numpy as np
import torch

import puffer
from puffer.render import check_render_mode
from puffer.trainer.checkpoint import load_checkpoint, load_policy
from puffer.trainer.episodes import play, policy_actor

RENDER_MODES = {"gif": "rgb_array", "ansi": "ansi"}  # --render choice -> the env's render mode


@torch.inference_mode()
def evaluate(env_name, checkpoint, episodes=100, deterministic=True, seed=0, device="cpu", render=None):
    """Mean and std of the return and mean length over the first episode of
    each of `episodes` envs, and the mean score over every episode the envs
    finished meanwhile (the C log does not tell episodes apart).
    `render` ("gif" or "ansi"): also returns as "frames" env 0's first
    episode, one frame per step (the state the action was chosen in), its
    "actions", "first_return" and the env's "fps"; for a text env also the
    "prompt" (as the policy saw it) and the "generated" text."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    saved = load_checkpoint(checkpoint, device, env_name)
    config = saved["config"]
    env = puffer.make(env_name, num_envs=episodes, **config["env"])
    if render is not None:
        if render not in RENDER_MODES:
            raise ValueError(f"unknown render {render!r}; choose one of: {', '.join(RENDER_MODES)}")
        check_render_mode(env, RENDER_MODES[render])
    policy = load_policy(saved, env, device)
    policy_act = policy_actor(policy, episodes, device, deterministic)
    frames, actions_taken = [], []

    def act(obs, rewards, starts, counting):
        actions = policy_act(obs, rewards, starts, counting)
        if render is not None and counting[0]:  # the state the action is chosen in
            frames.append(env.render(RENDER_MODES[render]))
            actions_taken.append(actions[0])
        return actions

    returns, lengths, _ = play(env, act, seed=seed)
    log = env.log()
    result = {"episodes": episodes, "mean_return": float(returns.mean()), "std_return": float(returns.std()),
              "mean_length": float(lengths.mean()), "score": log.get("score")}
    if render is not None:
        result.update(frames=frames, actions=np.array(actions_taken), fps=env.metadata["render_fps"],
                      first_return=float(returns[0]))
        if hasattr(env, "decode"):  # a text env: its episode reads best as prompt and continuation
            result.update(prompt=frames[0], generated=env.decode(result["actions"]))
    env.close()
    return result
