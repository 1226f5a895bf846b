import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode
from puffer.vector import PufferEnv, check_int
from puffer.envs.probes.delayed_reward import binding


class DelayedReward(PufferEnv):
    """Credit-assignment probe: match the cue shown at step 0 to earn +1, paid
    only at the last of delay + 1 steps; the waiting observations show the
    step but not the cue. Optimal return 1, score 1.0 (random play: 0.5).
    See delayed_reward.h."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}  # slow enough to follow

    def __init__(self, num_envs=1, delay=4, buffers=None):
        delay = check_int("delay", delay, 0, 1_000_000)
        self.single_observation_space = spaces.Box(0.0, 1.0, (3,), np.float32)
        self.single_action_space = spaces.Discrete(2, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.delay = delay
        self.bind(binding.VecEnv, dict(delay=delay))

    @classmethod
    def max_return(cls, options):
        return 1.0

    @classmethod
    def max_episode_steps(cls, options):
        return options["delay"] + 1

    def render(self, mode):
        """Env 0's observation: the two cue cells, the shown one yellow (both
        dark while waiting, as the agent sees them), and the wait's progress
        as a bar ("rgb_array", 256x64) or a step count ("ansi"); the last
        reward, paid at an episode's last step, in the text."""
        check_render_mode(self, mode)
        cues = self.observations[0, :2]
        step = round(float(self.observations[0, 2]) * (self.delay + 1))
        if mode == "ansi":
            shown = " ".join("[*]" if cue else "[ ]" for cue in cues)
            return f"cue {shown}  step {step}/{self.delay + 1}  reward {self.rewards[0]:+.0f}"
        canvas = Canvas((0, 0, 4, 1), (256, 64), (40, 40, 40))
        for i, cue in enumerate(cues):
            canvas.box(i + 0.15, 0.15, i + 0.85, 0.85, (255, 220, 0) if cue else (90, 90, 90))
        canvas.box(2.15, 0.35, 3.85, 0.65, (90, 90, 90))
        canvas.box(2.15, 0.35, 2.15 + 1.7 * step / (self.delay + 1), 0.65, (0, 200, 80))
        return canvas.array()
