import math

import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv
from puffer.envs.lunar_lander import binding
from puffer.envs.lunar_lander.binding import MAX_STEPS


class LunarLander(PufferEnv):
    """Gymnasium's LunarLander-v3 on rigid-body physics written in C (no Box2D).

    Observation: 8 floats with Gymnasium's scaling (position relative to the
    pad, velocity, angle, angular velocity, two leg-contact flags), clipped to
    Gymnasium's observation space. Actions: Discrete(4) (nothing, left engine,
    main engine, right engine) or, with continuous=True, Gymnasium's
    Box(-1, 1, (2,)) (main throttle, lateral). Gymnasium's reward shaping, fuel
    costs, -100 crash / off screen, +100 at rest, truncation after 1000 steps.
    Score: 1 when the episode ended at rest (landed), else 0. See lunar_lander.h.
    """

    max_steps = MAX_STEPS

    def __init__(self, num_envs=1, continuous=False, buffers=None):
        if not isinstance(continuous, (bool, np.bool_)):
            raise ValueError(f"continuous must be True or False, got {continuous!r}")
        self.continuous = bool(continuous)
        high = np.array([2.5, 2.5, 10.0, 10.0, 2 * math.pi, 10.0, 1.0, 1.0], np.float32)
        low = np.array([-2.5, -2.5, -10.0, -10.0, -2 * math.pi, -10.0, 0.0, 0.0], np.float32)
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        if self.continuous:
            self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        else:
            self.single_action_space = spaces.Discrete(4, dtype=np.int32)
        super().__init__(num_envs, buffers)
        config = dict(continuous=self.continuous)
        if self.continuous:
            # VecEnv's action type is int: hand it an int32 view of the float
            # actions; ContinuousVecEnv reads and checks them as floats.
            self.bind(lambda obs, actions, *rest: binding.ContinuousVecEnv(
                obs, actions.view(np.int32), *rest), config)
        else:
            self.bind(binding.VecEnv, config)
