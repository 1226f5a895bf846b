"""LSTM actor-critic for tasks that need memory: an MLP encoder of
`num_layers` layers, one LSTM cell shared by actor and critic, then the heads. The state is zeroed where an
episode starts, so memory never crosses an episode boundary."""
import torch
from torch import nn

from puffer.models.heads import action_head, layer_init, obs_size
from puffer.models.mlp import tower


class LSTMPolicy(nn.Module):
    is_recurrent = True

    def __init__(self, observation_space, action_space, hidden_size=64, num_layers=1):
        super().__init__()
        self.hidden_size = hidden_size
        self.encoder = tower(obs_size(observation_space), hidden_size, num_layers)
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        for name, param in self.cell.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param, 1.0)
            else:
                nn.init.constant_(param, 0.0)
        self.head = action_head(action_space)
        self.actor = layer_init(nn.Linear(hidden_size, self.head.num_params), std=0.01)
        self.critic = layer_init(nn.Linear(hidden_size, 1), std=1.0)

    def initial_state(self, batch_size, device):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device)
        return zeros, zeros.clone()

    def forward(self, obs, state, starts):
        """One step for a batch: `starts` (float, 1 where obs begins an episode)
        clears the state first. Returns distribution parameters, value and the
        new state."""
        keep = (1.0 - starts).unsqueeze(-1)
        h, c = self.cell(self.encoder(obs.flatten(1).float()), (state[0] * keep, state[1] * keep))
        return self.actor(h), self.critic(h).squeeze(-1), (h, c)

    def forward_sequence(self, obs, state, starts):
        """The same over a [T, B] sequence from `state`; returns [T, B, ...] outputs."""
        params, values = [], []
        for t in range(obs.shape[0]):
            p, v, state = self(obs[t], state, starts[t])
            params.append(p)
            values.append(v)
        return torch.stack(params), torch.stack(values), state
