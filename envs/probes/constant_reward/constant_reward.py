import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv
from puffer.envs.probes.constant_reward import binding


class ConstantReward(PufferEnv):
    """Value-learning probe: one action, reward +1 every step, a terminal after
    `length` steps. Every episode returns `length` (the optimum) with score
    1.0; the observation is the fraction of the episode left, 1.0 at the start.
    See constant_reward.h."""

    def __init__(self, num_envs=1, length=1, buffers=None):
        if not (isinstance(length, (int, np.integer)) and 1 <= length <= 1_000_000):
            raise ValueError(f"length must be an integer in [1, 1000000], got {length!r}")
        self.single_observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.single_action_space = spaces.Discrete(1, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(length=length))
