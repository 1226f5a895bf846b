import math

import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv
from puffer.envs.cartpole import binding
from puffer.envs.cartpole.binding import MAX_STEPS


class CartPole(PufferEnv):
    """Gymnasium's CartPole-v1 in C: observation [x, x_dot, theta, theta_dot]
    (float32), action 0 (push left) or 1 (push right), reward 1 every step,
    terminal when |x| > 2.4 or |theta| > 12 degrees, truncated after 500
    steps. Score: episode length / 500. See cartpole.h."""

    max_steps = MAX_STEPS

    def __init__(self, num_envs=1, buffers=None):
        # Bounds as Gymnasium's: twice the thresholds, so that the observation
        # that ends an episode is still inside the space.
        high = np.array([2.4 * 2, np.inf, 12 * 2 * math.pi / 360 * 2, np.inf], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, {})
