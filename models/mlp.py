"""MLP actor-critic: separate actor and critic towers of the same shape, as
in CleanRL, computed side by side."""
import math

import torch
from torch import nn

from puffer.models.heads import FeedForward, action_head, layer_init, obs_size


def tower(in_size, hidden_size, num_layers):
    layers = []
    for i in range(num_layers):
        layers += [layer_init(nn.Linear(in_size if i == 0 else hidden_size, hidden_size)), nn.Tanh()]
    return nn.Sequential(*layers)


class MLPPolicy(FeedForward):
    """Layer i of both towers is one batched matrix multiply (baddbmm) over
    their weights stacked [2 (actor, critic), in, out]: with small policies
    on a CPU, the cost of an op, not its arithmetic, is most of the time, and
    this halves the ops of the rollout and of the update alike. The last layer
    has max(num_params, 1) outputs in both towers; the critic's value is its
    first (the others are unused, and get no gradient)."""

    def __init__(self, observation_space, action_space, hidden_size=64, num_layers=2):
        super().__init__()
        self.head = action_head(action_space)
        num_params = self.head.num_params
        sizes = [obs_size(observation_space), *[hidden_size] * num_layers, max(num_params, 1)]
        # Orthogonal weights, zero biases, as CleanRL's: sqrt(2) for the hidden
        # layers; 0.01 for the actor's output (near-uniform actions), 1 for the critic's.
        gains = [[math.sqrt(2)] * 2] * num_layers + [[0.01, 1.0]]
        # (weight, bias) of each layer, as a plain list: a ParameterList's
        # indexing costs more than a layer's arithmetic at these sizes.
        self.layers = []
        for i, (in_size, out_size, tower_gains) in enumerate(zip(sizes, sizes[1:], gains)):
            weight = torch.empty(2, in_size, out_size)
            for stacked, gain in zip(weight, tower_gains):
                stacked.copy_(nn.init.orthogonal_(torch.empty(out_size, in_size), gain).T)
            weight, bias = nn.Parameter(weight), nn.Parameter(torch.zeros(2, 1, out_size))
            self.register_parameter(f"weight{i}", weight)
            self.register_parameter(f"bias{i}", bias)
            self.layers.append((weight, bias))
        self.num_params = num_params

    def forward(self, obs, state=None, starts=None):
        """Distribution parameters and value of a batch of observations. Takes
        and returns a (None) state to share the recurrent policies' signature."""
        x = obs.flatten(1).float()
        x = x.expand(2, *x.shape)  # both towers read the same observations
        for weight, bias in self.layers[:-1]:
            x = torch.tanh(torch.baddbmm(bias, x, weight))
        weight, bias = self.layers[-1]
        x = torch.baddbmm(bias, x, weight)
        return x[0, :, :self.num_params], x[1, :, 0], None
