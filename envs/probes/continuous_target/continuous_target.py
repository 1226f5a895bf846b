import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode
from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.continuous_target import binding


class ContinuousTarget(PufferEnv):
    """Continuous-action probe: observe a random target in [-1, 1], act a float
    in [-1, 1] (finite values outside are clipped), earn 1 - |action - target|;
    a new target each step, truncation after `horizon` steps. Optimal return
    `horizon`; score is the fraction of steps within 0.1 of the target.
    See continuous_target.h."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}  # slow enough to follow

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

    def render(self, mode):
        """Env 0's target (its observation) on the line from -1 to 1: an
        orange mark ("rgb_array", 256x64) or a "*" among 41 columns ("ansi").
        The text adds the last reward, earned on the previous target (the C
        env draws a fresh one every step)."""
        check_render_mode(self, mode)
        target = float(self.observations[0, 0])
        if mode == "ansi":
            line = ["-"] * 41
            line[20] = "|"  # zero
            line[round((target + 1) * 20)] = "*"
            return f"-1 {''.join(line)} +1  target {target:+.2f}  last reward {self.rewards[0]:+.2f}"
        canvas = Canvas((-1.1, -1, 1.1, 1), (256, 64), (40, 40, 40))
        canvas.box(-1, -0.05, 1, 0.05, (90, 90, 90))
        canvas.box(-0.01, -0.3, 0.01, 0.3, (90, 90, 90))  # zero
        canvas.box(target - 0.03, -0.6, target + 0.03, 0.6, (255, 140, 0))
        return canvas.array()
