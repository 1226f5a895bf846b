import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.delayed_reward import binding


class DelayedReward(PufferEnv):
    """Credit-assignment probe: match the cue shown at step 0 to earn +1, paid
    only at the last of delay + 1 steps; the waiting observations show the
    step but not the cue. Optimal return 1, score 1.0 (random play: 0.5).
    See delayed_reward.h."""

    def __init__(self, num_envs=1, delay=4, buffers=None):
        delay = check_int("delay", delay, 0, 1_000_000)
        self.single_observation_space = spaces.Box(0.0, 1.0, (3,), np.float32)
        self.single_action_space = spaces.Discrete(2, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(delay=delay))

    @classmethod
    def max_return(cls, options):
        return 1.0

    @classmethod
    def max_episode_steps(cls, options):
        return options["delay"] + 1
