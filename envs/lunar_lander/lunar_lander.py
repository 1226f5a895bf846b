import math

import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode, rotate
from puffer.vector import PufferEnv
from puffer.envs.lunar_lander import binding
from puffer.envs.lunar_lander.binding import CHUNK_W, HELIPAD_Y, HULL, LEG_CORNERS, MAX_STEPS, VIEWPORT


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

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 50}

    @classmethod
    def max_episode_steps(cls, options):
        return MAX_STEPS

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

    def render(self, mode):
        """Env 0 as Gymnasium draws LunarLander (600x400 for "rgb_array"), or
        as text under a line of its observation ("ansi"). The terrain and the
        legs are not in the observation: they are read from the C env."""
        check_render_mode(self, mode)
        state = binding.get_state(self.c_envs, 0)
        if mode == "rgb_array":
            return draw_lander(state, (600, 400)).array()
        x, y, _, _, angle, _, leg0, leg1 = self.observations[0]
        picture = draw_lander(state, (80, 27)).text({MOON: ".", HULL_COLOR: "#", LEG_COLOR: "%",
                                                     POLE: "|", FLAG: ">"})
        return (f"x {x:+.2f}  y {y:+.2f}  angle {math.degrees(angle):+.0f} deg  "
                f"legs {'down' if leg0 else 'up'}/{'down' if leg1 else 'up'}\n{picture}")


SKY, MOON, POLE, FLAG = (0, 0, 0), (255, 255, 255), (230, 230, 230), (204, 204, 0)
HULL_COLOR, LEG_COLOR = (128, 102, 230), (77, 77, 128)
# Gymnasium's flags: on the helipad's ends, 50 px poles with 25 px pennants.
FLAG_XS, POLE_HEIGHT, PENNANT = (VIEWPORT[0] / 2 - CHUNK_W, VIEWPORT[0] / 2 + CHUNK_W), 50 / 30, (25 / 30, 10 / 30)


def draw_lander(state, size):
    """The terrain, the flags and the lander of a `binding.get_state` dict."""
    canvas = Canvas((0.0, 0.0, *VIEWPORT), size, SKY)
    ground = [(CHUNK_W * i, height) for i, height in enumerate(state["ground"])]
    canvas.polygon([(0.0, 0.0), *ground, (ground[-1][0], 0.0)], MOON)
    for x in FLAG_XS:
        top = HELIPAD_Y + POLE_HEIGHT
        canvas.line([(x, HELIPAD_Y), (x, top)], POLE, 1 / 30)
        canvas.polygon([(x, top), (x, top - PENNANT[1]), (x + PENNANT[0], top - PENNANT[1] / 2)], FLAG)
    origin, angle = (state["x"], state["y"]), state["angle"]
    canvas.polygon(rotate(HULL, angle, origin), HULL_COLOR)
    # Each leg turns by its joint angle about the pivot (the hull's origin);
    # leg 1 is leg 0 mirrored.
    (left, bottom), (right, _), _, (_, top) = LEG_CORNERS
    centre = (left + right) / 2
    for side, leg_angle in zip((1, -1), state["legs"]):
        axis = [(side * x, y) for x, y in rotate([(centre, bottom), (centre, top)], leg_angle)]
        canvas.line(rotate(axis, angle, origin), LEG_COLOR, right - left)
    return canvas
