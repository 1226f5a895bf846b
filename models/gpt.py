"""A small GPT in the nanoGPT style: token and learned position embeddings,
pre-norm blocks of causal self-attention and an MLP, a final layer norm and a
language-model head tied to the token embedding. `GPTPolicy` puts a value
head beside it for PPO; the decision transformer reuses `Block`."""
import math

import torch
from torch import nn
from torch.nn import functional as F

from puffer.models.heads import Categorical, FeedForward


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, dropout):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"the embedding size ({n_embd}) must be a multiple of the number of heads ({n_head})")
        self.n_head, self.dropout = n_head, dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x, mask=None, cache=None):
        """x: [B, T, C]. `mask` ([T, T] or [B, 1, T, T], True = may attend)
        replaces the plain causal mask, e.g. to keep out padding. `cache`, for
        decoding a few tokens at a time: an object whose update(k, v) stores
        the new tokens' keys and values ([B, heads, T, head size]) and returns
        those of every token they may see; `mask` then spans those, and
        without one every new token sees them all."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.update(k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None and cache is None,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, dropout=0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))

    def forward(self, x, mask=None, cache=None):
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.mlp(self.ln_2(x))


def init_weights(module, num_layers):
    """GPT-2's init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers)."""
    for name, param in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(param)
        elif "ln_" in name or name.endswith("ln_f.weight"):
            nn.init.ones_(param)
        elif name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
            nn.init.normal_(param, 0.0, 0.02 / math.sqrt(2 * num_layers))
        else:
            nn.init.normal_(param, 0.0, 0.02)


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer=4, n_head=4, n_embd=128, dropout=0.0):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.token_embedding = nn.Embedding(vocab_size, n_embd)
        self.position_embedding = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        init_weights(self, n_layer)
        self.lm_head.weight = self.token_embedding.weight  # weight tying

    def hidden(self, idx, cache=None):
        """Token ids [B, T] -> final hidden states [B, T, C]. With a KVCache,
        idx continues the tokens the cache holds (positions from
        cache.length on) and is added to it; the whole sequence must fit in
        block_size."""
        start = 0 if cache is None else cache.length
        T = idx.shape[1]
        if start + T > self.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than the block size {self.block_size}")
        positions = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.token_embedding(idx) + self.position_embedding(positions))
        # Several new tokens after cached ones: token i sees the cache and the new tokens up to i.
        mask = None if cache is None or T == 1 else (
            torch.arange(start + T, device=idx.device) <= positions[:, None])
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, None if cache is None else cache.layer(layer))
        if cache is not None:
            cache.length += T
        return self.ln_f(x)

    def forward(self, idx, targets=None):
        """Logits [B, T, vocab], and the mean cross-entropy if `targets` are given."""
        logits = self.lm_head(self.hidden(idx))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    @torch.no_grad()
    def generate(self, idx, new_tokens, temperature=1.0, top_k=None, use_cache=True):
        """Appends `new_tokens` sampled tokens to idx [B, T]. When the whole
        text fits in the block, each new token is one cached forward step
        (with use_cache); beyond it the model re-reads the last block_size
        tokens for every new one."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        cache = KVCache(self, len(idx)) if use_cache and idx.shape[1] + new_tokens <= self.block_size else None
        last = idx
        for _ in range(new_tokens):
            if cache is None:
                last = idx[:, -self.block_size:]
            logits = self.lm_head(self.hidden(last, cache)[:, -1]) / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            last = torch.multinomial(F.softmax(logits, dim=-1), 1)
            idx = torch.cat([idx, last], dim=1)
        return idx

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())


class KVCache:
    """The keys and values of the tokens a GPT has read so far, for each
    layer, preallocated for a whole block: decoding one more token is then one
    token's forward pass instead of the whole text's."""

    def __init__(self, gpt, batch_size):
        attention = gpt.blocks[0].attn
        n_embd = gpt.token_embedding.embedding_dim
        shape = (len(gpt.blocks), batch_size, attention.n_head, gpt.block_size, n_embd // attention.n_head)
        weight = gpt.token_embedding.weight
        self.keys = torch.empty(shape, dtype=weight.dtype, device=weight.device)
        self.values = torch.empty_like(self.keys)
        self.length = 0  # tokens held

    def layer(self, index):
        return _LayerCache(self, index)


class _LayerCache:
    """One layer's view of a KVCache, as CausalSelfAttention's `cache`."""

    def __init__(self, cache, index):
        self.cache, self.index = cache, index

    def update(self, k, v):
        start, end = self.cache.length, self.cache.length + k.shape[2]
        keys, values = self.cache.keys[self.index], self.cache.values[self.index]
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        return keys[:, :, :end], values[:, :, :end]


class GPTPolicy(FeedForward):
    """PPO policy over token observations: the observation is the last
    `context` token ids, the action the next token. The policy's logits are
    the language model's at the last position. The value head reads the same
    hidden state, detached: a fresh critic's large early errors would
    otherwise flow into the pretrained transformer and wreck what it knows."""

    def __init__(self, observation_space, action_space, hidden_size=128, num_layers=4, num_heads=4):
        super().__init__()
        self.gpt = GPT(int(action_space.n), observation_space.shape[0], n_layer=num_layers, n_head=num_heads,
                       n_embd=hidden_size)
        self.critic = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.critic.bias)
        nn.init.normal_(self.critic.weight, 0.0, 0.02)
        self.head = Categorical()

    def forward(self, obs, state=None, starts=None):
        last = self.gpt.hidden(obs.long())[:, -1]
        return self.gpt.lm_head(last), self.critic(last.detach()).squeeze(-1), None
