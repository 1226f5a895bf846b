"""What every trainer does first: set torch's threads, seed every random
number generator, and pick the device."""
import random

import numpy as np
import torch


def seed_and_device(args):
    """Applies train.torch_threads and train.seed of `args` (the [train]
    section); returns train.device, or a RuntimeError if it is CUDA and
    there is none."""
    torch.set_num_threads(args.torch_threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {args.device!r} asked for, but CUDA is not available here")
    return device
