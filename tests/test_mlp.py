"""The MLP policy's stacked towers are two separate CleanRL towers."""
from copy import deepcopy

import numpy as np
import torch
from gymnasium import spaces

from puffer.models.mlp import MLPPolicy
from puffer.trainer.flops import forward_flops_per_sample, training_flops_per_sample

OBS_SPACE = spaces.Box(-1, 1, (4,), np.float32)


def separate_towers(policy, obs):
    """Actor output and value computed tower by tower, layer by layer, from
    the stacked weights."""
    outputs = []
    for tower in (0, 1):
        x = obs
        for i, (weight, bias) in enumerate(policy.layers):
            x = x @ weight[tower] + bias[tower, 0]
            if i < len(policy.layers) - 1:
                x = torch.tanh(x)
        outputs.append(x)
    return outputs[0][:, :policy.num_params], outputs[1][:, 0]


def test_stacked_towers_compute_the_actor_and_the_critic_apart():
    torch.manual_seed(0)
    for action_space in (spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32)):
        policy = MLPPolicy(OBS_SPACE, action_space, hidden_size=16, num_layers=2)
        obs = torch.randn(32, 4)
        params, value, state = policy(obs)
        expected_params, expected_value = separate_towers(policy, obs)
        assert state is None
        torch.testing.assert_close(params, expected_params)
        torch.testing.assert_close(value, expected_value)
        # The value's gradient reaches the critic's weights only, the
        # actor's output's the actor's only.
        value.sum().backward(retain_graph=True)
        assert all(w.grad[0].abs().max() == 0 and w.grad[1].abs().max() > 0 for w, _ in policy.layers)
        policy.zero_grad()
        params.sum().backward()
        assert all(w.grad[1].abs().max() == 0 and w.grad[0].abs().max() > 0 for w, _ in policy.layers)
        # A deep copy (the KL reference) computes with its own parameters.
        copy = deepcopy(policy)
        assert all(a is not b for (a, _), (b, _) in zip(copy.layers, policy.layers))
        assert {id(w) for w, _ in copy.layers} <= {id(p) for p in copy.parameters()}
        # Moved (as .to(device) moves it), the list still holds the parameters.
        policy.double()
        assert policy.layers[0][0] is policy.weight0 and policy.weight0.dtype == torch.float64


def test_initial_outputs_are_near_uniform_actions_and_unit_scale_values():
    torch.manual_seed(0)
    policy = MLPPolicy(OBS_SPACE, spaces.Discrete(2))
    params, value, _ = policy(torch.randn(4096, 4))
    assert params.abs().max() < 0.1  # actor's output layer at gain 0.01
    assert 0.1 < value.std() < 10.0  # critic's at gain 1
    assert all(b.abs().max() == 0 for _, b in policy.layers)


def test_forward_flops_count_the_matrix_multiplies():
    policy = MLPPolicy(OBS_SPACE, spaces.Discrete(3), hidden_size=16, num_layers=2)
    # two towers 4 -> 16 -> 16 -> 3 (the critic's 3 outputs, of which the
    # value is the first, are one batched multiply with the actor's);
    # 2 FLOPs per multiply-add
    expected = 2 * 2 * (4 * 16 + 16 * 16 + 16 * 3)
    assert forward_flops_per_sample(policy, OBS_SPACE, torch.device("cpu")) == expected
    assert training_flops_per_sample(expected, update_epochs=4) == 13 * expected
