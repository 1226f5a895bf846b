"""Drawing envs with Pillow: what each env's `render(mode)` builds on, and
the GIF writer of `puffer eval --render gif`.

Render modes follow Gymnasium's: "rgb_array" returns an HxWx3 uint8 array,
"ansi" a string. An env that renders lists its modes and frame rate in
`metadata` ({"render_modes": [...], "render_fps": N}) and draws env 0 of
its vector, the one a single-env wrapper holds.
"""
import functools
import time

import numpy as np

import puffer


def pillow():
    """Pillow's Image and ImageDraw modules, or an ImportError saying how to get them."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise ImportError("rendering needs Pillow: pip install pillow "
                          "(or pip install 'puffer[render]')") from None
    return Image, ImageDraw


@functools.lru_cache  # loading it costs more than drawing a character
def default_font(size):
    """Pillow's own font, `size` pixels high where it can scale (Pillow >= 10.1
    with FreeType), else its one small bitmap font: no font file to ship."""
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1 takes no size
        return ImageFont.load_default()


def check_render_mode(env, mode):
    """Raises ValueError unless `env` renders in `mode`."""
    modes = getattr(env, "metadata", {}).get("render_modes")
    if not modes:
        rendering = [name for name in puffer.ENVS if puffer.env_class(name).metadata.get("render_modes")]
        raise ValueError(f"{type(env).__name__} has no renderer; envs that render: {', '.join(rendering)}")
    if mode not in modes:
        raise ValueError(f"{type(env).__name__} renders in mode {' or '.join(map(repr, modes))}, "
                         f"not {mode!r}")


class Canvas:
    """A picture of the world rectangle `world` = (left, bottom, right, top),
    y up, drawn on `size` = (width, height) pixels. Text frames use the same
    drawing with one pixel per character (see `text`), so each env draws its
    scene once for both modes. Sizes are in world units; a shape never
    shrinks below a pixel."""

    def __init__(self, world, size, background):
        Image, ImageDraw = pillow()
        self.image = Image.new("RGB", size, background)
        self.draw = ImageDraw.Draw(self.image)
        self.left, self.bottom, right, top = world
        self.scale_x = size[0] / (right - self.left)
        self.scale_y = size[1] / (top - self.bottom)

    def pixel(self, x, y):
        return ((x - self.left) * self.scale_x, self.image.height - (y - self.bottom) * self.scale_y)

    def polygon(self, points, color):
        self.draw.polygon([self.pixel(x, y) for x, y in points], fill=color)

    def box(self, left, bottom, right, top, color):
        self.polygon([(left, bottom), (right, bottom), (right, top), (left, top)], color)

    def write(self, x, y, text, color, size):
        """`text` in Pillow's default font `size` pixels high, its top left at (x, y)."""
        self.draw.text(self.pixel(x, y), text, fill=color, font=default_font(size))

    def line(self, points, color, width):
        self.draw.line([self.pixel(x, y) for x, y in points], fill=color,
                       width=max(1, round(width * self.scale_x)))

    def array(self):
        return np.array(self.image)  # a copy: np.asarray's view of the image is read-only

    def text(self, chars):
        """The picture as text, one character per pixel: `chars` maps each
        color drawn to its character (unlisted colors become spaces)."""
        rows = ["".join(chars.get(tuple(pixel), " ") for pixel in row).rstrip() for row in self.array().tolist()]
        return "\n".join(rows).strip("\n")  # no blank rows above or below the picture


def rotate(points, angle, offset=(0.0, 0.0)):
    """`points` turned by `angle` radians (counter-clockwise) about (0, 0), then shifted by `offset`."""
    sin, cos = np.sin(angle), np.cos(angle)
    return [(offset[0] + x * cos - y * sin, offset[1] + x * sin + y * cos) for x, y in points]


def save_gif(frames, path, fps):
    """Writes `frames` (HxWx3 uint8 arrays) as a looping animated GIF at `fps`."""
    Image, _ = pillow()
    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(frame) for frame in frames]
    # GIF delays are in hundredths of a second; viewers slow anything under 2 to 10.
    duration = max(20, int(round(1000 / fps, -1)))
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def play(frames, fps, live):
    """Prints text frames: in place at `fps` on a terminal (`live`), else one after another."""
    for step, frame in enumerate(frames):
        if live:
            print("\x1b[H\x1b[2J" + frame, flush=True)  # cursor home, clear the screen
            time.sleep(1 / fps)
        else:
            print(f"step {step}\n{frame}\n")
