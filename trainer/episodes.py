"""Plays episodes in every env of a vector env at once: the one loop behind
`puffer eval`, `puffer collect`, the decision transformer's evaluation and
`puffer compare`'s transfer test."""
import numpy as np
import torch

FIELDS = ("observations", "actions", "rewards", "terminals", "truncations")


def play(env, act, seed=0, episodes_per_env=1, record=False):
    """Steps every env of `env` (a puffer vector env, or a Gymnasium one) from
    reset(seed=seed) until each has finished `episodes_per_env` episodes; an
    env done early steps on with the others, no longer counted.

    act(obs, rewards, starts, counting) gives the actions of a step from its
    observations, the rewards of the step before (zeros at the first), where
    an episode starts (all envs at the first step) and which envs still
    count.

    Returns the return and length of each env's first episode and, with
    `record` (a puffer env: it keeps its actions in env.actions), every step
    as FIELDS -> [steps, num_envs, ...] arrays, or None."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    rewards, starts = np.zeros(n, np.float32), np.ones(n, bool)
    returns, lengths = np.zeros(n), np.zeros(n, np.int64)
    finished = np.zeros(n, np.int64)
    steps = {field: [] for field in FIELDS}
    while (finished < episodes_per_env).any():
        counting = finished < episodes_per_env
        if record:
            steps["observations"].append(obs.copy())  # the env overwrites its buffer in step
        obs, rewards, terminals, truncations, _ = env.step(act(obs, rewards, starts, counting))
        first = finished == 0
        returns += rewards * first
        lengths += first
        starts = terminals | truncations
        finished += starts
        if record:
            for field, value in (("actions", env.actions), ("rewards", rewards), ("terminals", terminals),
                                 ("truncations", truncations)):
                steps[field].append(value.copy())
    return returns, lengths, ({field: np.stack(values) for field, values in steps.items()} if record else None)


def policy_actor(policy, num_envs, device, deterministic=False):
    """`act` for `play` from a PPO policy, which keeps its recurrent state
    (if any) from step to step."""
    state = policy.initial_state(num_envs, device)

    def act(obs, rewards, starts, counting):
        nonlocal state
        params, _, state = policy(torch.as_tensor(obs).to(device), state, torch.from_numpy(starts).to(device).float())
        return policy.head.sample(params, deterministic=deterministic)[0].cpu().numpy()
    return act
