"""Data-parallel training under torchrun, as one small object: every rank
steps its own envs and computes gradients on its own rollout; gradients are
averaged across ranks before each optimizer step, so all ranks keep the same
parameters. With one process (no torchrun) every method does nothing."""
import os

import torch
import torch.distributed as dist


class Distributed:
    def __init__(self):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main = self.rank == 0

    def start(self, device):
        """Joins the process group (NCCL on CUDA, one GPU a rank; gloo on
        the CPU); returns the device this rank trains on."""
        if self.world_size == 1:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def broadcast(self, tensor):
        """Rank 0's `tensor` on every rank, in place."""
        if self.world_size > 1:
            dist.broadcast(tensor, src=0)

    def average(self, tensor):
        """`tensor`, in place, its mean over the ranks."""
        if self.world_size > 1:
            dist.all_reduce(tensor)
            tensor /= self.world_size

    def divergence(self, policy):
        """The largest difference of any parameter between two ranks (0.0 when
        they are in sync, as the averaged gradients should keep them)."""
        flat = torch.cat([param.detach().flatten() for param in policy.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(self.world_size)]
        dist.all_gather(gathered, flat)
        return max(float((other - gathered[0]).abs().max()) for other in gathered)

    def close(self, finished):
        """Leaves the process group; after a finished run, all ranks together
        (rank 0 has saved by then)."""
        if self.world_size > 1:
            if finished:
                dist.barrier()
            dist.destroy_process_group()
