"""The compiled GAE against a plain-Python reference."""
import numpy as np
import pytest

from puffer.trainer.gae import compute_gae


def reference_gae(rewards, values, dones, next_values, gamma, lam):
    T, N = rewards.shape
    advantages = np.zeros((T, N))
    for i in range(N):
        running = 0.0
        for t in reversed(range(T)):
            next_value = next_values[i] if t == T - 1 else values[t + 1, i]
            nonterminal = 1.0 - dones[t, i]
            delta = rewards[t, i] + gamma * next_value * nonterminal - values[t, i]
            running = delta + gamma * lam * nonterminal * running
            advantages[t, i] = running
    return advantages


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_with_terminals_and_truncations_mid_rollout(seed):
    rng = np.random.default_rng(seed)
    T, N, gamma, lam = 37, 19, 0.99, 0.95
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    next_values = rng.normal(size=N).astype(np.float32)
    dones = (rng.random((T, N)) < 0.15).astype(np.uint8)
    truncated = dones.astype(bool) & (rng.random((T, N)) < 0.5)
    final_values = rng.normal(size=(T, N)).astype(np.float32)
    # A truncated step bootstraps from the value of the episode's final observation.
    rewards = rewards + np.where(truncated, gamma * final_values, 0).astype(np.float32)
    advantages = np.zeros((T, N), np.float32)
    compute_gae(rewards, values, dones, next_values, gamma, lam, advantages)
    expected = reference_gae(rewards, values, dones, next_values, gamma, lam)
    np.testing.assert_allclose(advantages, expected, rtol=1e-4, atol=1e-4)


def test_no_value_flows_across_an_episode_end():
    T, N = 4, 1
    rewards = np.zeros((T, N), np.float32)
    rewards[1] = 1.0
    values = np.zeros((T, N), np.float32)
    dones = np.zeros((T, N), np.uint8)
    dones[1] = 1
    advantages = np.zeros((T, N), np.float32)
    compute_gae(rewards, values, dones, np.full(N, 100.0, np.float32), 1.0, 1.0, advantages)
    assert advantages[:, 0].tolist() == [1.0, 1.0, 100.0, 100.0]


def test_shape_mismatch_is_an_error():
    a = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="values has shape"):
        compute_gae(a, np.zeros((4, 2), np.float32), np.zeros((4, 3), np.uint8), np.zeros(3, np.float32),
                    0.99, 0.95, a.copy())
    with pytest.raises(ValueError, match="next_values"):
        compute_gae(a, a.copy(), np.zeros((4, 3), np.uint8), np.zeros(2, np.float32), 0.99, 0.95, a.copy())
