import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.constant_reward import binding


class ConstantReward(PufferEnv):
    """Value-learning probe: one action, reward +1 every step, a terminal after
    `length` steps. Every episode returns `length` (the optimum) with score
    1.0; the observation is the fraction of the episode left, 1.0 at the start.
    See constant_reward.h."""

    def __init__(self, num_envs=1, length=1, buffers=None):
        length = check_int("length", length, 1, 1_000_000)
        self.single_observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.single_action_space = spaces.Discrete(1, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(length=length))

    @classmethod
    def max_return(cls, options):
        return float(options["length"])

    @classmethod
    def max_episode_steps(cls, options):
        return options["length"]
