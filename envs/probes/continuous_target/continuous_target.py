import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.continuous_target import binding


class ContinuousTarget(PufferEnv):
    """Continuous-action probe: observe a random target in [-1, 1], act a float
    in [-1, 1] (finite values outside are clipped), earn 1 - |action - target|;
    a new target each step, truncation after `horizon` steps. Optimal return
    `horizon`; score is the fraction of steps within 0.1 of the target.
    See continuous_target.h."""

    def __init__(self, num_envs=1, horizon=8, buffers=None):
        horizon = check_int("horizon", horizon, 1, 1_000_000)
        self.single_observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(horizon=horizon))

    @classmethod
    def max_return(cls, options):
        return float(options["horizon"])

    @classmethod
    def max_episode_steps(cls, options):
        return options["horizon"]
