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
    cdef float next_value, next_advantage, nonterminal, delta
    with nogil:
        for t in range(T - 1, -1, -1):
            for i in range(N):
                nonterminal = 1.0 - dones[t, i]
                if t == T - 1:
                    next_value = next_values[i]
                    next_advantage = 0.0
                else:
                    next_value = values[t + 1, i]
                    next_advantage = advantages[t + 1, i]
                delta = rewards[t, i] + gamma * next_value * nonterminal - values[t, i]
                advantages[t, i] = delta + gamma * gae_lambda * nonterminal * next_advantage
