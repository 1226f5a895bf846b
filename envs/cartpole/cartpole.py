import math

import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode, rotate
from puffer.vector import PufferEnv
from puffer.envs.cartpole import binding
from puffer.envs.cartpole.binding import MAX_STEPS


class CartPole(PufferEnv):
    """Gymnasium's CartPole-v1 in C: observation [x, x_dot, theta, theta_dot]
    (float32), action 0 (push left) or 1 (push right), reward 1 every step,
    terminal when |x| > 2.4 or |theta| > 12 degrees, truncated after 500
    steps. Score: episode length / 500. See cartpole.h."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 50}  # tau = 0.02 s

    def __init__(self, num_envs=1, buffers=None):
        # Bounds as Gymnasium's: twice the thresholds, so that the observation
        # that ends an episode is still inside the space.
        high = np.array([2.4 * 2, np.inf, 12 * 2 * math.pi / 360 * 2, np.inf], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, {})

    @classmethod
    def max_return(cls, options):
        return float(MAX_STEPS)

    @classmethod
    def max_episode_steps(cls, options):
        return MAX_STEPS

    def render(self, mode):
        """Env 0 as Gymnasium draws CartPole (600x400 for "rgb_array"), or as
        text with its state on the first line ("ansi")."""
        check_render_mode(self, mode)
        x, _, theta, _ = self.observations[0]
        if mode == "rgb_array":
            return draw_cartpole(x, theta, (600, 400)).array()
        pole = "/" if theta > 0.05 else "\\" if theta < -0.05 else "|"
        picture = draw_cartpole(x, theta, (80, 27)).text({CART: "#", POLE: pole, TRACK: "-"})
        return f"x {x:+.3f}  theta {math.degrees(theta):+.1f} deg\n{picture}"


# Gymnasium's picture: 4.8 m of track over 600 pixels, the cart 0.4 x 0.24 m
# with the track through its middle, a 1 m pole 0.08 m wide.
CART, POLE, TRACK = (0, 0, 0), (202, 152, 101), (128, 128, 128)
CART_W, CART_H, TRACK_Y, POLE_LENGTH, POLE_W = 0.4, 0.24, 0.8, 1.0, 0.08


def draw_cartpole(x, theta, size):
    canvas = Canvas((-2.4, 0.0, 2.4, 3.2), size, (255, 255, 255))
    canvas.line([(-2.4, TRACK_Y), (2.4, TRACK_Y)], TRACK, 0.008)
    w, h = CART_W / 2, CART_H / 2
    canvas.polygon([(x - w, TRACK_Y - h), (x + w, TRACK_Y - h), (x + w, TRACK_Y + h), (x - w, TRACK_Y + h)], CART)
    axle = (x, TRACK_Y + CART_H / 4)
    # theta > 0 leans the pole to the right: a clockwise turn from upright.
    tip = rotate([(0.0, POLE_LENGTH)], -theta, axle)[0]
    canvas.line([axle, tip], POLE, POLE_W)
    return canvas
