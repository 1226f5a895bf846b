import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode
from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.light_button import binding
from puffer.envs.probes.light_button.binding import MAX_DELAY


class LightButton(PufferEnv):
    """Press the light-up button: +1 for the lit button, any other press ends
    the episode; `horizon` steps end it as a truncation. Optimal return:
    `horizon`, score 1.0. See light_button.h for the `hard`, `show_step` and
    `delay` variants."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}  # slow enough to follow

    def __init__(self, num_envs=1, num_buttons=4, horizon=16, hard=False, show_step=False,
                 delay=0, buffers=None):
        num_buttons = check_int("num_buttons", num_buttons, 2, 1024)
        horizon = check_int("horizon", horizon, 1, 1_000_000)
        delay = check_int("delay", delay, 0, min(MAX_DELAY, horizon - 1))
        for name, flag in (("hard", hard), ("show_step", show_step)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        self.num_buttons = num_buttons
        self.single_observation_space = spaces.Box(0.0, 1.0, (num_buttons + bool(show_step),), np.float32)
        self.single_action_space = spaces.Discrete(num_buttons, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(num_buttons=num_buttons, horizon=horizon, hard=bool(hard),
                                       show_step=bool(show_step), delay=delay))

    @classmethod
    def max_return(cls, options):
        return float(options["horizon"])

    @classmethod
    def max_episode_steps(cls, options):
        return options["horizon"]

    def render(self, mode):
        """Env 0's buttons, the lit one yellow ("rgb_array", 64 pixels a
        button) or starred ("ansi"): what the observation shows."""
        check_render_mode(self, mode)
        lit = int(np.argmax(self.observations[0, :self.num_buttons]))
        if mode == "ansi":
            return " ".join("[*]" if i == lit else "[ ]" for i in range(self.num_buttons))
        canvas = Canvas((0, 0, self.num_buttons, 1), (64 * self.num_buttons, 64), (40, 40, 40))
        for i in range(self.num_buttons):
            canvas.polygon([(i + 0.15, 0.15), (i + 0.85, 0.15), (i + 0.85, 0.85), (i + 0.15, 0.85)],
                           (255, 220, 0) if i == lit else (90, 90, 90))
        return canvas.array()
