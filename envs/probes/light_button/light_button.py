import numpy as np
from gymnasium import spaces

from puffer.vector import PufferEnv
from puffer.envs.probes.light_button import binding
from puffer.envs.probes.light_button.binding import MAX_DELAY


class LightButton(PufferEnv):
    """Press the light-up button: +1 for the lit button, any other press ends
    the episode; `horizon` steps end it as a truncation. Optimal return:
    `horizon`, score 1.0. See light_button.h for the `hard`, `show_step` and
    `delay` variants."""

    def __init__(self, num_envs=1, num_buttons=4, horizon=16, hard=False, show_step=False,
                 delay=0, buffers=None):
        if not 2 <= num_buttons <= 1024:
            raise ValueError(f"num_buttons must be in [2, 1024], got {num_buttons!r}")
        if not 1 <= horizon <= 1_000_000:
            raise ValueError(f"horizon must be in [1, 1000000], got {horizon!r}")
        if not 0 <= delay <= min(MAX_DELAY, horizon - 1):
            raise ValueError(f"delay must be in [0, min({MAX_DELAY}, horizon - 1)], got {delay!r}")
        self.single_observation_space = spaces.Box(0.0, 1.0, (num_buttons + bool(show_step),), np.float32)
        self.single_action_space = spaces.Discrete(num_buttons, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(num_buttons=num_buttons, horizon=horizon, hard=bool(hard),
                                       show_step=bool(show_step), delay=delay))
