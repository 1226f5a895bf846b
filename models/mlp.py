"""MLP actor-critic: separate actor and critic towers, as in CleanRL."""
import torch
from torch import nn

from puffer.models.heads import FeedForward, action_head, layer_init, obs_size


class SigmoidTanh(torch.autograd.Function):
    """tanh(x) as 2 sigmoid(2x) - 1 (within 2e-7 of it). Profiling training
    on x86 CPUs showed torch's float32 tanh at several ns per element, 5-10x
    its sigmoid, and the towers' tanh as the largest share of a small
    policy's time; the gradient is tanh's own, 1 - y^2."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(2 * x).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class Tanh(nn.Module):
    def forward(self, x):
        return SigmoidTanh.apply(x)


def tower(in_size, hidden_size, num_layers):
    layers = []
    for i in range(num_layers):
        layers += [layer_init(nn.Linear(in_size if i == 0 else hidden_size, hidden_size)), Tanh()]
    return nn.Sequential(*layers)


class MLPPolicy(FeedForward):
    def __init__(self, observation_space, action_space, hidden_size=64, num_layers=2):
        super().__init__()
        size = obs_size(observation_space)
        self.actor = nn.Sequential(tower(size, hidden_size, num_layers), action_head(hidden_size, action_space))
        self.critic = nn.Sequential(tower(size, hidden_size, num_layers), layer_init(nn.Linear(hidden_size, 1), std=1.0))
        self.head = self.actor[-1]

    def forward(self, obs, state=None, starts=None):
        """Distribution parameters and value of a batch of observations. Takes
        and returns a (None) state to share the recurrent policies' signature."""
        obs = obs.flatten(1).float()
        return self.actor(obs), self.critic(obs).squeeze(-1), None
