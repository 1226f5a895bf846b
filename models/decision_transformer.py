"""The decision transformer (Chen et al., 2021): a causal GPT over
trajectories that predicts each step's action from the return still to come
(the return-to-go), the observation and what came before. Conditioning it on a
high return-to-go asks for the behaviour that earned high returns.

Each step t of an episode gives the model (previous action, return-to-go,
observation); the previous action of an episode's first step is a start value
of its own. Two layouts:
  interleaved: three tokens a step, [a_{t-1}, R_t, s_t], the action read off
               the observation token; the sequence of the paper, with a start
               token before R_1.
  one_token:   the three embeddings summed into one token a step.
Every token also gets an embedding of its absolute step in the episode, so a
context shorter than the episode still knows the time.

A token sees the tokens of the same episode in the last `context` steps (a
sliding window) and none of padding. `StepCache` keeps the keys and values of
those steps for N envs in a ring, so stepping a batch of envs costs one token
group per env per step, and gives the same predictions as the uncached
forward over the whole episode."""
import torch
from torch import nn

from puffer.models.gpt import Block, init_weights

LAYOUTS = {"interleaved": 3, "one_token": 1}  # layout -> tokens per step


class DecisionTransformer(nn.Module):
    def __init__(self, obs_size, action_size, discrete, layout="interleaved", context=20, max_timestep=1000,
                 return_scale=1.0, hidden_size=128, num_layers=3, num_heads=4, dropout=0.1):
        """`action_size`: the number of actions (discrete) or the action's
        length (continuous). `max_timestep`: the longest episode; later steps
        share the last timestep embedding. `return_scale`: returns-to-go are
        divided by it before the model sees them."""
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
        self.discrete, self.action_size, self.layout = discrete, action_size, layout
        self.tokens_per_step, self.context, self.max_timestep = LAYOUTS[layout], context, max_timestep
        self.num_heads = num_heads
        self.embed_timestep = nn.Embedding(max_timestep, hidden_size)
        self.embed_return = nn.Linear(1, hidden_size)
        self.embed_obs = nn.Linear(obs_size, hidden_size)
        if discrete:
            self.embed_action = nn.Embedding(action_size + 1, hidden_size)  # the last index: no previous action
        else:
            self.embed_action = nn.Linear(action_size, hidden_size)
            self.start_action = nn.Parameter(torch.zeros(hidden_size))
        self.ln_in = nn.LayerNorm(hidden_size)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, dropout) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(hidden_size)
        self.action_head = nn.Linear(hidden_size, action_size)
        init_weights(self, num_layers)
        # Set from the training data, saved with the weights.
        self.register_buffer("obs_mean", torch.zeros(obs_size))
        self.register_buffer("obs_std", torch.ones(obs_size))
        self.register_buffer("return_scale", torch.tensor(float(return_scale)))

    @property
    def start_index(self):
        """The "no previous action" index of a discrete action embedding: never a real action."""
        return self.action_size

    def embed(self, returns_to_go, observations, prev_actions, timesteps):
        """Steps [B, S] (observations [B, S, obs], continuous actions [B, S, size])
        -> tokens [B, S * tokens_per_step, C]. prev_actions at a timestep of 0 are ignored."""
        first = timesteps == 0
        if self.discrete:
            action = self.embed_action(torch.where(first, self.start_index, prev_actions.long()))
        else:
            action = torch.where(first[..., None], self.start_action, self.embed_action(prev_actions))
        ret = self.embed_return((returns_to_go / self.return_scale)[..., None])
        obs = self.embed_obs((observations - self.obs_mean) / self.obs_std)
        time = self.embed_timestep(timesteps.clamp(max=self.max_timestep - 1))
        if self.layout == "interleaved":
            tokens = (torch.stack([action, ret, obs], dim=2) + time[:, :, None]).flatten(1, 2)
        else:
            tokens = action + ret + obs + time
        return self.drop(self.ln_in(tokens))

    def attention_mask(self, timesteps, valid):
        """[B, 1, T, T], True where a token may attend: earlier tokens (and its
        own step's earlier tokens) of the same episode within the last
        `context` steps, not padding. An episode starts where the timestep is 0.
        Every token sees itself, so that a padding token's row is never empty."""
        S, P = timesteps.shape[1], self.tokens_per_step
        step = torch.arange(S, device=timesteps.device)
        back = step[:, None] - step[None, :]
        episode = (timesteps == 0).cumsum(1)
        allowed = (back >= 0) & (back < self.context) & (episode[:, :, None] == episode[:, None, :]) & valid[:, None, :]
        allowed = allowed.repeat_interleave(P, 1).repeat_interleave(P, 2)
        token = torch.arange(S * P, device=timesteps.device)
        same_step = (token[:, None] // P) == (token[None, :] // P)
        allowed = allowed & (~same_step | (token[None, :] <= token[:, None]))
        return (allowed | torch.eye(S * P, dtype=torch.bool, device=timesteps.device))[:, None]

    def forward(self, returns_to_go, observations, prev_actions, timesteps, valid):
        """Action predictions [B, S, action_size] (logits or values) for
        steps [B, S]; `valid` [B, S] is False on padding."""
        x = self.embed(returns_to_go, observations, prev_actions, timesteps)
        mask = self.attention_mask(timesteps, valid)
        for block in self.blocks:
            x = block(x, mask)
        return self.predict(x)

    def predict(self, hidden):
        """The action prediction of each step, read off its last token (the observation's)."""
        return self.action_head(self.ln_f(hidden[:, self.tokens_per_step - 1::self.tokens_per_step]))

    def step(self, cache, returns_to_go, observations, prev_actions, timesteps):
        """One step of N envs at once, each [N] (observations [N, obs]): the
        action predictions [N, action_size], extending `cache` by this step.
        An env whose timestep is 0 starts a new episode and forgets its past."""
        x = self.embed(returns_to_go[:, None], observations[:, None], prev_actions[:, None], timesteps[:, None])
        mask = cache.advance(timesteps == 0)
        for block, layer_cache in zip(self.blocks, cache.layers):
            x = block(x, mask, layer_cache)
        return self.predict(x)[:, 0]


class StepCache:
    """Keys and values of the last `context` steps of N envs, for each layer,
    in a ring: step c of the rollout writes slot c % context. Every env steps
    together, so one slot index serves all; `valid` forgets an env's slots
    when its episode ends."""

    def __init__(self, model, num_envs, device="cpu"):
        P, C = model.tokens_per_step, model.ln_f.normalized_shape[0]
        self.tokens_per_step, self.context = P, model.context
        shape = (len(model.blocks), num_envs, model.num_heads, model.context * P, C // model.num_heads)
        self.keys = torch.zeros(shape, device=device)
        self.values = torch.zeros(shape, device=device)
        self.valid = torch.zeros(num_envs, model.context * P, dtype=torch.bool, device=device)
        self.within_step = torch.ones(P, P, dtype=torch.bool, device=device).tril()
        self.layers = [LayerSlots(self, layer) for layer in range(len(model.blocks))]
        self.steps = 0
        self.slots = slice(0, 0)

    def advance(self, new_episode):
        """Moves to the next slot (overwriting the step `context` ago) and
        returns the attention mask [N, 1, P, context * P] of this step's tokens."""
        P = self.tokens_per_step
        first = (self.steps % self.context) * P
        self.slots = slice(first, first + P)
        self.steps += 1
        self.valid[new_episode] = False
        self.valid[:, self.slots] = True
        mask = self.valid[:, None, None, :].repeat(1, 1, P, 1)
        mask[:, :, :, self.slots] &= self.within_step
        return mask


class LayerSlots:
    """One layer's view of a StepCache, as CausalSelfAttention's `cache`."""

    def __init__(self, cache, layer):
        self.cache, self.layer = cache, layer

    def update(self, k, v):
        keys, values = self.cache.keys[self.layer], self.cache.values[self.layer]
        keys[:, :, self.cache.slots] = k
        values[:, :, self.cache.slots] = v
        return keys, values
