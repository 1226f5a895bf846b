"""The MLP towers' tanh (computed through sigmoid, for speed) is tanh."""
import torch

from puffer.models.mlp import SigmoidTanh


def test_sigmoid_tanh_is_tanh_with_tanh_gradient():
    x = torch.linspace(-30, 30, 20001, requires_grad=True)
    y = SigmoidTanh.apply(x)
    assert (y - torch.tanh(x)).abs().max() < 3e-7
    grad = torch.randn_like(x)
    y.backward(grad)
    assert torch.allclose(x.grad, grad * (1 - torch.tanh(x.detach()) ** 2), atol=1e-6)
    x64 = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SigmoidTanh.apply, (x64,))


def test_forward_flops_count_the_matrix_multiplies():
    import numpy as np
    from gymnasium import spaces

    from puffer.models.mlp import MLPPolicy
    from puffer.trainer.flops import forward_flops_per_sample, training_flops_per_sample
    obs_space = spaces.Box(-1, 1, (4,), np.float32)
    policy = MLPPolicy(obs_space, spaces.Discrete(3), hidden_size=16, num_layers=2)
    # two towers 4 -> 16 -> 16, heads 16 -> 3 and 16 -> 1; 2 FLOPs per multiply-add
    expected = 2 * (2 * (4 * 16 + 16 * 16) + 16 * 3 + 16 * 1)
    assert forward_flops_per_sample(policy, obs_space, torch.device("cpu")) == expected
    assert training_flops_per_sample(expected, update_epochs=4) == 13 * expected
