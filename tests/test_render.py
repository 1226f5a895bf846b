"""Rendering: env.render in Gymnasium's modes, `puffer eval --render gif`
(one frame per step of the episode) and `--render ansi` (text frames, or a
text env's prompt and generation), and the errors for what cannot render."""
import re

import gymnasium
import numpy as np
import pytest
import torch

import puffer
from puffer.cli import main
from puffer.config import load_config
from puffer.gymnasium_env import gymnasium_id
from puffer.models import make_policy
from puffer.render import save_gif
from puffer.tokenizer import load_corpus
from puffer.trainer.checkpoint import save_checkpoint
from puffer.trainer.evaluate import evaluate
from puffer.trainer.ppo import train

Image = pytest.importorskip("PIL.Image", reason="rendering needs Pillow (pip install 'puffer[render]')")


def untrained_checkpoint(tmp_path, env_name):
    """A checkpoint of a freshly initialized policy: short, varied episodes."""
    torch.manual_seed(0)
    config = load_config(env_name)
    env = puffer.make(env_name, **config["env"])
    policy = make_policy(config["policy"], env.single_observation_space, env.single_action_space)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"env_name": env_name, "config": config, "policy": policy.state_dict()})
    return path


def trained_checkpoint(tmp_path, env_name):
    """A checkpoint after a little training: an untrained light_button policy
    presses one button whatever is lit, so its episodes end at the first step."""
    config = load_config(env_name, {"train.total_steps": 8192, "vec.num_envs": 32, "train.torch_threads": 1})
    return train(env_name, config, tmp_path / "run", live=False)["checkpoint"]


@pytest.mark.parametrize("env_name, size", [("cartpole", (600, 400)), ("lunar_lander", (600, 400)),
                                            ("light_button", (256, 64)), ("text", (396, 60))])
def test_gif_has_a_frame_per_step(tmp_path, env_name, size):
    make_checkpoint = trained_checkpoint if env_name == "light_button" else untrained_checkpoint
    result = evaluate(env_name, make_checkpoint(tmp_path, env_name), episodes=3, render="gif", seed=1)
    frames = result["frames"]
    assert len(frames) == len(result["actions"]) > 1
    assert all(frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8 for frame in frames)
    assert len({frame.tobytes() for frame in frames}) > 1, "the frames do not change"
    if env_name == "cartpole":  # +1 a step: the return counts the steps
        assert len(frames) == result["first_return"]
    if env_name == "light_button":  # +1 a right press; a wrong one ends the episode
        assert len(frames) == result["first_return"] + (result["first_return"] < 16)

    gif = Image.open(save_gif(frames, tmp_path / "episode.gif", result["fps"]))
    assert gif.size == size and gif.is_animated
    # Pillow merges a frame equal to the one before into it, adding up their delays.
    durations = []
    for index in range(gif.n_frames):
        gif.seek(index)
        durations.append(gif.info["duration"])
    assert sum(durations) == len(frames) * max(20, round(1000 / result["fps"], -1))


@pytest.mark.parametrize("name", list(puffer.ENVS))
def test_every_env_draws_an_rgb_array(name):
    env = puffer.make(name)
    assert "rgb_array" in env.metadata["render_modes"]
    env.reset(seed=0)
    frame = env.render("rgb_array")
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 1, "a picture of one color shows nothing"
    single = gymnasium.make(gymnasium_id(name), render_mode="rgb_array")  # its checker checks the frame too
    single.reset(seed=0)
    assert np.array_equal(single.render(), frame), "the same seed starts the same episode: the same picture"


def test_text_picture_shows_the_text():
    env = puffer.make("text")
    env.reset(seed=0)
    frame = env.render("rgb_array")
    assert np.array_equal(env.render("rgb_array"), frame)
    env.observations[0, -1] = (env.observations[0, -1] + 1) % env.tokenizer.vocab_size
    changed = np.argwhere((env.render("rgb_array") != frame).any(axis=2))
    height, width = frame.shape[:2]
    assert len(changed), "another last character, the same picture"
    # The last of the 64 characters is the last cell of the second of two rows of 32.
    assert changed[:, 0].min() > height / 2 and changed[:, 1].min() > width * 30 / 33


def test_probes_ansi_shows_the_observation():
    env = puffer.make("constant_reward", length=4)
    env.reset(seed=0)
    assert env.render("ansi").startswith("left 4/4 [" + "#" * 20 + "]")
    env.step(np.zeros(1, np.int32))
    assert env.render("ansi") == "left 3/4 [" + "#" * 15 + " " * 5 + "]  reward +1"
    env = puffer.make("delayed_reward", delay=2)
    obs, _ = env.reset(seed=0)
    assert re.findall(r"\[.\]", env.render("ansi")).index("[*]") == obs[0, :2].argmax()
    env.step(np.zeros(1, np.int32))
    assert env.render("ansi") == "cue [ ] [ ]  step 1/3  reward +0"  # the cue hidden while waiting
    env = puffer.make("continuous_target")
    obs, _ = env.reset(seed=0)
    line = env.render("ansi").split()[1]  # "-1 ----*---|---------- +1  target ..."
    assert len(line) == 41 and line.index("*") == round((obs[0, 0] + 1) * 20)


def test_cli_writes_the_gif_beside_the_checkpoint(tmp_path, capsys):
    checkpoint = untrained_checkpoint(tmp_path, "cartpole")
    main(["eval", "cartpole", "--checkpoint", str(checkpoint), "--episodes", "1", "--render", "gif"])
    assert Image.open(tmp_path / "cartpole.gif").is_animated
    assert f"wrote {tmp_path / 'cartpole.gif'}" in capsys.readouterr().out


def cart_column(frame):
    """The column of the cart's middle in a cartpole text frame."""
    track = next(line for line in frame.splitlines() if "-#" in line or "#-" in line)
    columns = [i for i, char in enumerate(track) if char == "#"]
    return (columns[0] + columns[-1]) / 2


def test_cartpole_ansi_shows_the_cart_move():
    env = puffer.make("cartpole")
    env.reset(seed=0)
    frames = [env.render("ansi")]
    for _ in range(8):
        env.step(np.ones(1, np.int32))  # push right
        frames.append(env.render("ansi"))
    xs = [float(frame.split()[1]) for frame in frames]  # the first line: "x +0.012  theta ..."
    assert xs == sorted(xs) and xs[-1] - xs[0] > 0.1
    # 80 columns for the 4.8 m of track, x = 0 in the middle.
    for x, frame in zip(xs, frames):
        assert abs(cart_column(frame) - (39.5 + x * 80 / 4.8)) <= 1
    assert "\\" in frames[-1], "pushed right, the pole leans left"
    env.observations[0] = (1.5, 0.0, 0.15, 0.0)  # the frame shows the state, whatever it is
    assert abs(cart_column(env.render("ansi")) - (39.5 + 1.5 * 80 / 4.8)) <= 1 and "/" in env.render("ansi")


def test_lunar_lander_draws_terrain_flags_and_lander():
    env = puffer.make("lunar_lander")
    env.reset(seed=3)
    frame = env.render("rgb_array")
    colors = {tuple(c) for c in frame.reshape(-1, 3)}
    assert {(0, 0, 0), (255, 255, 255), (204, 204, 0), (128, 102, 230), (77, 77, 128)} <= colors
    text = env.render("ansi")
    assert text.startswith("x ") and all(char in text for char in ".#%|>")
    # The lander starts at the top centre: its hull in the middle of the top rows.
    top = text.splitlines()[1]
    assert abs((top.index("#") + top.rindex("#")) / 2 - 40) < 3


def test_light_button_ansi_stars_the_lit_button():
    env = puffer.make("light_button", num_buttons=5)
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        cells = re.findall(r"\[.\]", env.render("ansi"))
        assert cells.count("[ ]") == 4 and cells.index("[*]") == int(np.argmax(obs[0]))
        obs = env.step(np.argmax(obs, axis=1).astype(np.int32))[0]


def test_text_ansi_prints_prompt_and_generation(tmp_path, capsys):
    checkpoint = untrained_checkpoint(tmp_path, "text")
    result = evaluate("text", checkpoint, episodes=1, render="ansi")
    env = puffer.make("text")
    assert len(result["prompt"]) == 64 and result["prompt"] in load_corpus()
    assert result["generated"] == env.decode(result["actions"]) and len(result["generated"]) == 64
    assert result["frames"][1] == result["prompt"][1:] + result["generated"][0]

    main(["eval", "text", "--checkpoint", str(checkpoint), "--episodes", "1", "--render", "ansi"])
    out = capsys.readouterr().out
    assert result["prompt"] in out and result["generated"] in out and "episode 0: 64 steps" in out


def test_what_cannot_render_says_what_can(tmp_path):
    with pytest.raises(ValueError, match="renders in mode 'rgb_array' or 'ansi', not 'human'"):
        puffer.make("cartpole").render("human")
    with pytest.raises(ValueError, match=f"GymnasiumVecEnv has no renderer; envs that render: "
                                         f"{', '.join(puffer.ENVS)}$"):
        evaluate("gym:CartPole-v1", untrained_checkpoint(tmp_path, "gym:CartPole-v1"), render="gif")
    with pytest.raises(ValueError, match="unknown render 'mp4'; choose one of: gif, ansi"):
        evaluate("cartpole", untrained_checkpoint(tmp_path, "cartpole"), render="mp4")
