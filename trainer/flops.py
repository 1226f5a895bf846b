"""Model FLOPs utilisation (MFU): the FLOPs a training run spends on its
policy, as a fraction of what the device can do.

FLOPs are counted as is usual for MFU: the matrix multiplies (and attention)
of the policy, not its elementwise work. A sample costs one forward pass in
the rollout and, in each of the update's epochs, a forward and a backward pass
(the backward about twice the forward), so 1 + 3 * epochs forward passes in
all. The peak is measured, not looked up: the best rate of a large matrix
multiply on the same device, with the same threads, in the same run.
"""
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def forward_flops_per_sample(policy, observation_space, device, batch=8):
    """FLOPs of one forward pass of `policy` on one observation."""
    obs = torch.from_numpy(np.zeros((batch, *observation_space.shape), observation_space.dtype)).to(device)
    state = policy.initial_state(batch, device) if policy.is_recurrent else None
    starts = torch.zeros(batch, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        policy(obs, state, starts)
    return counter.get_total_flops() / batch


def training_flops_per_sample(forward_flops, update_epochs, reference=False):
    """FLOPs a training sample costs: a rollout forward (two with a KL
    reference policy) and a forward and backward per epoch."""
    return forward_flops * ((2 if reference else 1) + 3 * update_epochs)


def peak_flops(device, size=1024, seconds=0.3):
    """The best float32 FLOP/s of [size, size] matrix multiplies on `device`
    over about `seconds`, timed in short rounds so that a moment when another
    process had the CPU does not count against it."""
    generator = torch.Generator(device).manual_seed(0)  # leaves training's random state alone
    a = torch.randn(size, size, device=device, generator=generator)
    b = torch.randn(size, size, device=device, generator=generator)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        best = max(best, 4 * 2 * size ** 3 / (time.perf_counter() - start))
    return best
