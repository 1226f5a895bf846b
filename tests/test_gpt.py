"""The GPT: causal masking, weight tying, generation, its key/value cache, and as a PPO policy."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from puffer.models.gpt import GPT, GPTPolicy, KVCache


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64).eval()


def test_changing_a_later_token_never_changes_an_earlier_output(model):
    idx = torch.randint(0, 65, (3, 32))
    logits, _ = model(idx)
    for position in (0, 7, 31):
        changed = idx.clone()
        changed[:, position] = (changed[:, position] + 1) % 65
        new_logits, _ = model(changed)
        assert torch.equal(new_logits[:, :position], logits[:, :position])
        assert not torch.allclose(new_logits[:, position:], logits[:, position:])


def test_head_is_tied_to_the_token_embedding(model):
    assert model.lm_head.weight is model.token_embedding.weight


def test_loss_of_an_untrained_model_is_near_uniform(model):
    idx, targets = torch.randint(0, 65, (2, 8, 32))
    _, loss = model(idx, targets)
    assert abs(loss.item() - np.log(65)) < 0.2


def test_generate_appends_tokens_and_checks_arguments(model):
    out = model.generate(torch.zeros((2, 5), dtype=torch.long), 40, temperature=0.8, top_k=5)
    assert out.shape == (2, 45) and out.max() < 65
    with pytest.raises(ValueError, match="temperature"):
        model.generate(torch.zeros((1, 1), dtype=torch.long), 1, temperature=0)
    with pytest.raises(ValueError, match="block size"):
        model(torch.zeros((1, 33), dtype=torch.long))


def test_the_cache_gives_the_logits_of_a_whole_pass_whatever_the_chunks(model):
    idx = torch.randint(0, 65, (3, 32))
    whole = model.lm_head(model.hidden(idx))
    cache = KVCache(model, 3)
    chunks = [idx[:, :12], *idx[:, 12:20].split(1, dim=1), idx[:, 20:27], idx[:, 27:]]  # prefill, steps, chunks
    cached = torch.cat([model.lm_head(model.hidden(chunk, cache)) for chunk in chunks], dim=1)
    assert cache.length == 32
    torch.testing.assert_close(cached, whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="longer than the block size 32"):
        model.hidden(idx[:, :1], cache)


def test_cached_generation_equals_uncached_generation(model):
    prompts = torch.randint(0, 65, (8, 10))
    torch.manual_seed(3)
    cached = model.generate(prompts, 22)
    torch.manual_seed(3)
    uncached = model.generate(prompts, 22, use_cache=False)
    assert torch.equal(cached, uncached)
    # Past the block there is no exact cache: both re-read the last block_size tokens.
    torch.manual_seed(3)
    long = model.generate(prompts, 40)
    torch.manual_seed(3)
    assert torch.equal(long, model.generate(prompts, 40, use_cache=False))
    assert torch.equal(long[:, :32], cached)


def test_policy_reads_token_observations():
    policy = GPTPolicy(spaces.Box(0, 64, (16,), np.uint8), spaces.Discrete(65), hidden_size=32,
                       num_layers=1, num_heads=2)
    obs = torch.randint(0, 65, (5, 16), dtype=torch.uint8)
    logits, value, state = policy(obs)
    assert logits.shape == (5, 65) and value.shape == (5,) and state is None
    actions, logprob = policy.head.sample(logits)
    assert actions.shape == (5,) and torch.all(logprob <= 0)
