"""Action heads: the distribution over a space's actions, from the
parameters a policy computes, with the sampling, log probability and entropy
PPO needs. Written out by hand rather than with torch.distributions, whose
argument checks cost more than the math at the batch sizes of small envs."""
import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn


class FeedForward(nn.Module):
    """The policy interface for a policy without memory, shared with the
    recurrent ones: no state (None), and a [T, B] sequence is T * B steps."""

    is_recurrent = False

    def initial_state(self, batch_size, device):
        return None

    def forward_sequence(self, obs, state, starts):
        """forward over a [T, B, ...] sequence; returns [T, B, ...] outputs."""
        params, value, _ = self(obs.flatten(0, 1), None, None)
        return params.unflatten(0, obs.shape[:2]), value.unflatten(0, obs.shape[:2]), None


def layer_init(layer, std=math.sqrt(2), bias=0.0):
    """Orthogonal weights and constant bias, as in CleanRL."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class Categorical(nn.Module):
    """A categorical distribution over `n` actions from logits, which the
    policy computes (`num_params` of them per observation)."""

    def __init__(self, n=None):
        super().__init__()
        self.num_params = n

    def sample(self, logits, deterministic=False):
        """Actions (int64) and their log probabilities."""
        log_probs = torch.log_softmax(logits, dim=-1)
        if deterministic:
            actions = logits.argmax(dim=-1)
        else:  # Gumbel-max: argmax of logits plus Gumbel noise is a categorical sample
            noise = -torch.log(-torch.log(torch.rand_like(logits).clamp_(1e-20, 1.0)))
            actions = (logits + noise).argmax(dim=-1)
        return actions, log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def log_prob_entropy(self, logits, actions):
        log_probs = torch.log_softmax(logits, dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1), entropy


class Gaussian(nn.Module):
    """A diagonal Gaussian: its mean (`num_params` = action_dim per
    observation) from the policy, with a learned, state-independent log std.
    Samples are not clipped here: the env clips to its bounds, and PPO needs
    the log probability of the sample itself."""

    def __init__(self, action_dim):
        super().__init__()
        self.num_params = action_dim
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def sample(self, mean, deterministic=False):
        """Actions (float32) and their log probabilities."""
        actions = mean if deterministic else mean + self.log_std.exp() * torch.randn_like(mean)
        return actions, self.log_prob_entropy(mean, actions)[0]

    def log_prob_entropy(self, mean, actions):
        log_std = self.log_std.expand_as(mean)
        log_prob = -0.5 * ((actions - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
        entropy = log_std + 0.5 * (1.0 + math.log(2 * math.pi))
        return log_prob.sum(-1), entropy.sum(-1)


def action_head(action_space):
    """The distribution over `action_space`'s actions."""
    if isinstance(action_space, spaces.Discrete):
        return Categorical(int(action_space.n))
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return Gaussian(action_space.shape[0])
    raise ValueError(f"no policy head for action space {action_space}")


def obs_size(observation_space):
    return int(np.prod(observation_space.shape))
