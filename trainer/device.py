"""What every trainer does first: set torch's threads, seed every random
number generator, and pick the device."""
import random

import numpy as np
import torch


def seed_and_device(args, seed=None):
    """Applies train.torch_threads and seeds every generator with `seed`
    (default train.seed of `args`, the [train] section); returns
    train.device, or a ValueError if it is CUDA and there is none."""
    seed = args.seed if seed is None else seed
    torch.set_num_threads(args.torch_threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device is {args.device!r}, but CUDA is not available here "
                         "(torch.cuda.is_available() is False): use --device cpu")
    return device
