"""PPO in the style of CleanRL's single-file ppo.py, written against
Gymnasium's API only: `gymnasium.make_vec("puffer/CartPole-v1")` gives
puffer's C vector env, and nothing else here knows puffer.

    python docs/examples/cleanrl_ppo.py --total-steps 100000

Autoreset mode NEXT_STEP (make_vec's default, as Gymnasium's): the step
after an episode's last one returns the next episode's first observation,
with reward 0, and ignores its action; that step is not a transition, so
it is masked out of the returns and the loss. A truncated episode is
bootstrapped from the value of its last observation.
"""
import argparse
import time

import gymnasium
import numpy as np
import torch
import torch.nn as nn

import puffer  # noqa: F401  (registers the puffer/ ids)


def layer(n_in, n_out, std=np.sqrt(2)):
    linear = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(linear.weight, std)
    nn.init.zeros_(linear.bias)
    return linear


class Agent(nn.Module):
    def __init__(self, n_obs, n_actions, hidden=64):
        super().__init__()
        self.critic = nn.Sequential(layer(n_obs, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
                                    layer(hidden, 1, 1.0))
        self.actor = nn.Sequential(layer(n_obs, hidden), nn.Tanh(), layer(hidden, hidden), nn.Tanh(),
                                   layer(hidden, n_actions, 0.01))

    def value(self, obs):
        return self.critic(obs).squeeze(-1)

    def act(self, obs, action=None):
        dist = torch.distributions.Categorical(logits=self.actor(obs))
        action = dist.sample() if action is None else action
        return action, dist.log_prob(action), dist.entropy(), self.value(obs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-id", default="puffer/CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--num-steps", type=int, default=64, help="rollout length per env")
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--gae-lambda", type=float, default=0.95)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--minibatches", type=int, default=4)
    parser.add_argument("--clip", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    envs = gymnasium.make_vec(args.env_id, num_envs=args.num_envs)
    envs = gymnasium.wrappers.vector.RecordEpisodeStatistics(envs)
    n_obs, n_actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    agent = Agent(n_obs, n_actions)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)

    T, N = args.num_steps, args.num_envs
    obs = torch.zeros((T, N, n_obs))
    actions = torch.zeros((T, N), dtype=torch.long)
    logprobs, rewards, values = torch.zeros((T, N)), torch.zeros((T, N)), torch.zeros((T, N))
    ends = torch.zeros((T, N))        # 1: step t ended an episode (terminated or truncated)
    bootstraps = torch.zeros((T, N))  # gamma * V(last observation) where step t truncated one
    valid = torch.zeros((T, N))       # 0: step t only reset its env (NEXT_STEP)

    next_obs, _ = envs.reset(seed=args.seed)
    next_obs, resetting = torch.tensor(next_obs), torch.zeros(N, dtype=torch.bool)
    returns, global_step, start = [], 0, time.time()
    for update in range(args.total_steps // (T * N)):
        for t in range(T):
            obs[t], valid[t] = next_obs, (~resetting).float()
            with torch.no_grad():
                action, logprobs[t], _, values[t] = agent.act(next_obs)
            actions[t] = action
            next_obs, reward, terminated, truncated, infos = envs.step(action.numpy())
            next_obs = torch.tensor(next_obs)  # a copy: the env writes its buffer in place
            rewards[t] = torch.tensor(reward)
            ends[t] = torch.tensor(terminated | truncated).float()
            truncated = torch.tensor(truncated)
            if truncated.any():  # next_obs holds the truncated episode's last observation
                with torch.no_grad():
                    bootstraps[t] = torch.where(truncated, args.gamma * agent.value(next_obs), 0.0)
            else:
                bootstraps[t] = 0.0
            resetting = torch.tensor(terminated) | truncated
            if "episode" in infos:
                returns += list(infos["episode"]["r"][infos["_episode"]])
            global_step += N

        # GAE, backwards; a reset step is skipped: it carries the advantage of the step after it.
        with torch.no_grad():
            next_value = torch.where(resetting, 0.0, agent.value(next_obs))
            advantages = torch.zeros((T, N))
            gae = torch.zeros(N)
            for t in reversed(range(T)):
                target = rewards[t] + bootstraps[t] + args.gamma * next_value * (1 - ends[t])
                delta = target - values[t]
                gae = torch.where(valid[t] > 0, delta + args.gamma * args.gae_lambda * (1 - ends[t]) * gae, gae)
                advantages[t] = gae
                next_value = torch.where(valid[t] > 0, values[t], next_value)
            targets = advantages + values

        flat = lambda x: x.reshape(T * N, *x.shape[2:])  # noqa: E731
        b_obs, b_actions, b_logprobs = flat(obs), flat(actions), flat(logprobs)
        b_advantages, b_targets, b_valid = flat(advantages), flat(targets), flat(valid)
        minibatch = T * N // args.minibatches
        for _ in range(args.epochs):
            for idx in torch.randperm(T * N).split(minibatch):
                _, logprob, entropy, value = agent.act(b_obs[idx], b_actions[idx])
                mask = b_valid[idx]
                count = mask.sum().clamp(min=1)
                adv = b_advantages[idx]
                adv = (adv - adv[mask > 0].mean()) / (adv[mask > 0].std() + 1e-8) if count > 1 else adv
                ratio = (logprob - b_logprobs[idx]).exp()
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip, 1 + args.clip))
                value_loss = 0.5 * (value - b_targets[idx]) ** 2
                loss = ((policy_loss + 0.5 * value_loss) * mask).sum() / count
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
        recent = np.mean(returns[-100:]) if returns else float("nan")
        print(f"step {global_step:>7,}  mean return (last 100 episodes) {recent:6.1f}  "
              f"{global_step / (time.time() - start):,.0f} SPS", flush=True)
    envs.close()
    return float(np.mean(returns[-100:]))


if __name__ == "__main__":
    main()
