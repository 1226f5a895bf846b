"""MLP actor-critic: separate actor and critic towers, as in CleanRL."""
from torch import nn

from puffer.models.heads import action_head, layer_init, obs_size


def tower(in_size, hidden_size, num_layers):
    layers = []
    for i in range(num_layers):
        layers += [layer_init(nn.Linear(in_size if i == 0 else hidden_size, hidden_size)), nn.Tanh()]
    return nn.Sequential(*layers)


class MLPPolicy(nn.Module):
    is_recurrent = False

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
