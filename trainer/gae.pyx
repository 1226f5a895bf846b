# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Generalized advantage estimation over a whole [T, N] rollout, in C."""


def compute_gae(float[:, ::1] rewards, float[:, ::1] values, unsigned char[:, ::1] dones,
                float[::1] next_values, float gamma, float gae_lambda, float[:, ::1] advantages):
    """Fills `advantages` [T, N].

    dones[t, i] = 1 when env i's episode ended at step t, terminal or truncated:
    no value flows back across it. A truncated step's reward must already hold
    gamma * V(final observation), the bootstrap of the cut-off episode.
    next_values [N]: V of the observation after the last step.
    """
    cdef Py_ssize_t T = rewards.shape[0], N = rewards.shape[1], t, i
    for name, array in (("values", values), ("dones", dones), ("advantages", advantages)):
        if array.shape[0] != T or array.shape[1] != N:
            raise ValueError(f"{name} has shape {tuple(array.shape)[:2]}, rewards {(T, N)}")
    if next_values.shape[0] != N:
        raise ValueError(f"next_values has {next_values.shape[0]} entries, expected {N}")
    cdef float nonterminal, delta
    # The last step first, then the rest without a branch in the inner loop,
    # which runs along a contiguous row of envs and so vectorizes.
    with nogil:
        for i in range(N):
            nonterminal = 1.0 - dones[T - 1, i]
            advantages[T - 1, i] = rewards[T - 1, i] + gamma * next_values[i] * nonterminal - values[T - 1, i]
        for t in range(T - 2, -1, -1):
            for i in range(N):
                nonterminal = 1.0 - dones[t, i]
                delta = rewards[t, i] + gamma * values[t + 1, i] * nonterminal - values[t, i]
                advantages[t, i] = delta + gamma * gae_lambda * nonterminal * advantages[t + 1, i]
