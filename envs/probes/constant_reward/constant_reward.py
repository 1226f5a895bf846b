import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode
from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.constant_reward import binding


class ConstantReward(PufferEnv):
    """Value-learning probe: one action, reward +1 every step, a terminal after
    `length` steps. Every episode returns `length` (the optimum) with score
    1.0; the observation is the fraction of the episode left, 1.0 at the start.
    See constant_reward.h."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}  # slow enough to follow

    def __init__(self, num_envs=1, length=1, buffers=None):
        length = check_int("length", length, 1, 1_000_000)
        self.single_observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.single_action_space = spaces.Discrete(1, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.length = length
        self.bind(binding.VecEnv, dict(length=length))

    @classmethod
    def max_return(cls, options):
        return float(options["length"])

    @classmethod
    def max_episode_steps(cls, options):
        return options["length"]

    def render(self, mode):
        """Env 0's observation, the fraction of the episode left, as a green
        bar in a grey trough ("rgb_array", 256x64) or a bar of #s ("ansi"),
        with the last reward (0 until the first step, then always +1)."""
        check_render_mode(self, mode)
        left = float(self.observations[0, 0])
        if mode == "ansi":
            bar = "#" * round(20 * left)
            return f"left {round(left * self.length)}/{self.length} [{bar:<20}]  reward {self.rewards[0]:+.0f}"
        canvas = Canvas((0, 0, 1, 1), (256, 64), (40, 40, 40))
        canvas.box(0.05, 0.3, 0.95, 0.7, (90, 90, 90))
        canvas.box(0.05, 0.3, 0.05 + 0.9 * left, 0.7, (0, 200, 80))
        return canvas.array()
