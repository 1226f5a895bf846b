"""Checkpoints, written atomically: a crash mid-write leaves the previous
checkpoint intact, never a torn file."""
import os
from pathlib import Path

import torch

from puffer.models import make_policy

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path, state):
    """torch.save to a temporary file in the same folder, fsync, then rename
    over `path` (atomic on POSIX) and fsync the folder so the rename persists."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_folder(path)


def fsync_folder(path):
    """fsync the folder holding `path`, so that a file just created or
    renamed there keeps its name after a crash."""
    folder = os.open(Path(path).absolute().parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_checkpoint(path, device="cpu", env_name=None):
    """A checkpoint file, or the checkpoint inside a run directory; with
    `env_name`, a ValueError unless it was trained on that env."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    saved = torch.load(path, map_location=device, weights_only=False)
    if env_name is not None and saved.get("env_name") != env_name:
        raise ValueError(f"checkpoint {path} is for {saved.get('env_name')!r}, not {env_name!r}")
    return saved


def rng_state(device):
    """torch's random state, and the GPU's when training there: what a
    checkpoint keeps so that a resumed run draws the same noise."""
    return {"torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(saved, device):
    """The random state rng_state put into the checkpoint `saved` (read to the
    CPU: torch.set_rng_state takes a CPU tensor)."""
    torch.set_rng_state(saved["torch_rng"])
    if device.type == "cuda" and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"], device)


def load_policy(saved, env, device="cpu"):
    """The PPO policy of the checkpoint `saved`, for `env`'s spaces, in eval mode."""
    if "policy" not in saved:
        raise ValueError("this checkpoint holds no PPO policy (it is not from puffer train ENV)")
    policy = make_policy(saved["config"]["policy"], env.single_observation_space,
                         env.single_action_space).to(device)
    policy.load_state_dict(saved["policy"])
    return policy.eval()
