"""The decision transformer: its masks, returns-to-go, start action, losses,
the key/value cache, datasets and a short end-to-end learn of light_button."""
import math

import numpy as np
import pytest
import torch

import puffer
from puffer.cli import main
from puffer.config import load_config
from puffer.models.decision_transformer import DecisionTransformer, StepCache
from puffer.trainer.collect import collect, load_dataset, save_dataset
from puffer.trainer.dt import (Trajectories, action_loss, episode_limit, evaluate, follow_env, load_model,
                               online_targets, returns_to_go, run_episodes, train)

torch.set_num_threads(1)


def make_model(layout="interleaved", discrete=True, actions=3, context=4, obs_size=2, seed=0):
    torch.manual_seed(seed)
    return DecisionTransformer(obs_size=obs_size, action_size=actions, discrete=discrete, layout=layout, context=context,
                               max_timestep=32, return_scale=10.0, hidden_size=32, num_layers=2, num_heads=2,
                               dropout=0.0).eval()


def random_steps(model, timesteps, seed=1):
    """Random inputs for `timesteps` [B, S]: returns-to-go, observations, previous actions, timesteps, valid."""
    g = torch.Generator().manual_seed(seed)
    B, S = timesteps.shape
    prev = (torch.randint(model.action_size, (B, S), generator=g) if model.discrete
            else torch.randn(B, S, model.action_size, generator=g))
    return [torch.randn(B, S, generator=g) * 10, torch.randn(B, S, 2, generator=g), prev, timesteps,
            torch.ones(B, S, dtype=torch.bool)]


def changed(model, inputs, field, step, value):
    """Predictions before and after inputs[field][:, step] is set to `value`."""
    edited = [t.clone() for t in inputs]
    edited[field][:, step] = value
    with torch.no_grad():
        return model(*inputs), model(*edited)


LAYOUTS = ["interleaved", "one_token"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_changing_a_later_step_never_changes_an_earlier_prediction(layout):
    model = make_model(layout, context=8)
    inputs = random_steps(model, torch.arange(6)[None].repeat(2, 1))
    for field, value in ((0, 99.0), (1, 5.0), (2, 2)):
        before, after = changed(model, inputs, field, 3, value)
        assert torch.equal(before[:, :3], after[:, :3])
        assert not torch.allclose(before[:, 3:], after[:, 3:])  # the change does reach the later steps


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_step_attends_across_an_episode_boundary(layout):
    model = make_model(layout, context=8)
    timesteps = torch.tensor([[3, 4, 5, 0, 1, 2]])  # the end of one episode, the start of the next
    inputs = random_steps(model, timesteps)
    for field, value in ((0, 99.0), (1, 5.0), (2, 1)):
        before, after = changed(model, inputs, field, 2, value)  # the last step of the first episode
        assert torch.equal(before[:, 3:], after[:, 3:])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_padding_is_masked_out(layout):
    model = make_model(layout, context=8)
    inputs = random_steps(model, torch.arange(6)[None])
    inputs[4][:, :2] = False  # two steps of padding, with timesteps that would place them in the episode
    for field, value in ((0, 99.0), (1, 5.0)):
        before, after = changed(model, inputs, field, slice(0, 2), value)
        assert torch.equal(before[:, 2:], after[:, 2:])


@pytest.mark.parametrize("discrete", [True, False])
def test_the_previous_action_of_a_first_step_is_the_start_value(discrete):
    model = make_model(discrete=discrete, context=8)
    inputs = random_steps(model, torch.tensor([[0, 1, 2, 3]]))
    before, after = changed(model, inputs, 2, 0, 1 if discrete else 7.0)  # ignored: there is none
    assert torch.equal(before, after)
    # The start value is an embedding row of its own beyond the real actions, never a predicted class.
    if discrete:
        assert model.embed_action.num_embeddings == model.action_size + 1 == model.start_index + 1
        assert before.shape[-1] == model.action_size


def test_returns_to_go_are_undiscounted_sums_to_the_end_of_each_episode():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=40).astype(np.float32)
    ends = np.array([4, 5, 19, 39])
    expected, total = np.zeros(40), 0.0
    for i in reversed(range(40)):
        total = rewards[i] + (0.0 if i in ends else total)
        expected[i] = total
    np.testing.assert_allclose(returns_to_go(rewards, ends), expected, rtol=1e-5, atol=1e-5)


def episodes(lengths, actions=3, seed=0):
    """Trajectories fields of episodes of these lengths, the last one truncated."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    ends = np.cumsum(lengths) - 1
    terminals, truncations = np.zeros(n, bool), np.zeros(n, bool)
    terminals[ends[:-1]], truncations[ends[-1]] = True, True
    return dict(observations=rng.normal(size=(n, 2)).astype(np.float32),
                actions=rng.integers(0, actions, n).astype(np.int32),
                rewards=rng.normal(size=n).astype(np.float32), terminals=terminals, truncations=truncations)


def test_sampled_windows_stay_in_one_episode_and_targets_are_real_actions():
    torch.manual_seed(0)
    data = Trajectories(**episodes([1, 3, 7, 2, 12]))
    rtg, obs, prev, timesteps, actions, valid = data.sample(256, 5, "cpu")
    assert (actions >= 0).all() and (actions < 3).all()  # never the start index, 3
    for row in range(256):
        real = timesteps[row][valid[row]]
        assert torch.equal(real, torch.arange(real[0], real[0] + len(real)))  # consecutive steps of one episode
        assert valid[row, -1] and (valid[row].long().diff() >= 0).all()  # padding only before the start
        if not valid[row, 0]:
            assert real[0] == 0


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_cross_entropy_over_any_number_of_classes_on_real_steps_only(classes):
    model = make_model(actions=classes)
    predictions = torch.randn(2, 4, classes)
    actions = torch.randint(classes, (2, 4))
    valid = torch.tensor([[False, True, True, True], [True, True, True, True]])
    expected = -torch.log_softmax(predictions, -1).gather(-1, actions[..., None])[..., 0][valid].mean()
    assert torch.allclose(action_loss(model, predictions, actions, valid), expected)
    assert math.isclose(action_loss(model, torch.zeros(2, 4, classes), actions, valid).item(), math.log(classes),
                        rel_tol=1e-6)
    predictions[0, 0] = 1e6  # padding: no effect
    assert torch.allclose(action_loss(model, predictions, actions, valid), expected)


def test_mean_squared_error_for_continuous_actions():
    model = make_model(discrete=False, actions=2)
    valid = torch.tensor([[False, True]])
    loss = action_loss(model, torch.tensor([[[9.0, 9.0], [1.0, 2.0]]]), torch.tensor([[[0.0, 0.0], [0.0, 0.0]]]), valid)
    assert math.isclose(loss.item(), 2.5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("discrete", [True, False])
def test_cached_batched_steps_equal_the_uncached_forward(layout, discrete):
    model = make_model(layout, discrete, context=4)
    # Episodes of different lengths in each env, longer than the context.
    timesteps = torch.tensor([[t % 6 for t in range(14)], [t % 3 for t in range(14)], list(range(14))])
    inputs = random_steps(model, timesteps)
    cache = StepCache(model, 3)
    with torch.no_grad():
        full = model(*inputs)
        stepped = torch.stack([model.step(cache, *(t[:, s] for t in inputs[:4])) for s in range(14)], 1)
    assert torch.allclose(full, stepped, atol=1e-5)


def test_run_episodes_conditions_each_env_on_its_target():
    """Envs stepped in one batch give the same episodes as each stepped alone."""
    model = make_model(actions=4, context=4, obs_size=4)
    env = puffer.make("light_button", num_envs=6, horizon=8)
    targets = np.array([0.0, 1.0, 2.0, 4.0, 6.0, 8.0], np.float32)
    together = run_episodes(model, env, targets, seed=3, record=True)
    for i in (0, 3, 5):
        alone = run_episodes(model, env, np.full(6, targets[i]), seed=3, record=True)
        assert np.array_equal(alone["episodes"][i]["actions"], together["episodes"][i]["actions"])
        assert alone["returns"][i] == together["returns"][i]


def test_a_temperature_divides_the_logits():
    """Sampling at a temperature near 0 is the most likely action; at a high one, near uniform."""
    model = make_model(actions=4, context=4, obs_size=4)
    with torch.no_grad():
        model.action_head.bias.copy_(torch.tensor([0.0, 0.0, 3.0, 0.0]))  # action 2 by far the most likely
    env = puffer.make("light_button", num_envs=200, horizon=1)  # one step: every env acts once
    greedy = run_episodes(model, env, 1.0, seed=0)["action_frequencies"]
    assert greedy[2] == 1.0
    assert np.array_equal(run_episodes(model, env, 1.0, temperature=1e-3, seed=0)["action_frequencies"], greedy)
    hot = run_episodes(model, env, 1.0, temperature=100.0, seed=0)
    assert hot["action_frequencies"].min() > 0.15 and hot["entropy"] > 0.99 * math.log(4)


def test_online_targets_aim_a_little_above_the_best_return():
    np.random.seed(0)
    for best in (200.0, -150.0):
        targets = online_targets(best, 1000, 0.05, 1.0)
        assert abs(targets.mean() - (best + 0.05 * abs(best))) < 0.2 and 0.8 < targets.std() < 1.2


def test_a_dataset_is_checked_against_the_env(tmp_path):
    config = {"num_buttons": 4, "horizon": 4, "hard": False, "show_step": False, "delay": 0}
    data = collect("light_button", 50, config, seed=0)
    ends = np.flatnonzero(data["terminals"] | data["truncations"])
    assert len(ends) == 50 and ends[-1] == len(data["rewards"]) - 1
    path = tmp_path / "data.npz"
    save_dataset(path, data, "light_button", config)
    env = puffer.make("light_button", **config)
    assert load_dataset(path, "light_button", config, env)["rewards"].shape == data["rewards"].shape
    with pytest.raises(ValueError, match="holds 'light_button' episodes, not 'cartpole'"):
        load_dataset(path, "cartpole", config, env)
    with pytest.raises(ValueError, match="collected with env options"):
        load_dataset(path, "light_button", {**config, "horizon": 8}, env)
    with pytest.raises(ValueError, match="observations has shape"):
        load_dataset(path, "light_button", config, puffer.make("light_button", num_buttons=3, horizon=4))
    with pytest.raises(ValueError, match="needs --checkpoint"):
        collect("light_button", 10, config, epsilons=[0.5])


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown layout"):
        make_model("sideways")
    with pytest.raises(SystemExit):
        main(["train", "light_button", "--algo", "sac"])
    assert "invalid choice: 'sac'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--data FILE .* or --online"):
        main(["train", "light_button", "--algo", "dt", "--run-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="--data and --online are for --algo dt"):
        main(["train", "light_button", "--online"])


def test_light_button_learns_from_random_episodes(tmp_path):
    """The whole pipeline: collect random episodes, train, evaluate at the largest return."""
    config = load_config("light_button", {"env.horizon": 4, "dt.context": 4, "dt.return_scale": 4.0,
                                          "dt.eval_targets": [4.0], "dt.eval_episodes": 200,
                                          "dt.train_steps": 150, "dt.eval_interval": 150,
                                          "train.torch_threads": 1})
    path = tmp_path / "data.npz"
    save_dataset(path, collect("light_button", 2000, config["env"], seed=0), "light_button", config["env"])
    summary = train("light_button", config, tmp_path / "run", data=str(path), live=False)
    assert summary["evaluation"][0]["score"] == 1.0
    model, _ = load_model(summary["checkpoint"])
    assert evaluate(model, "light_button", config["env"], [4.0], 50)[0]["mean_return"] == 4.0


def test_light_button_learns_online(tmp_path):
    """No dataset: from random warm-up episodes to the largest return by its own rollouts."""
    # The target and the return scale follow the horizon: 8, the largest return.
    config = load_config("light_button", {"env.horizon": 8, "dt.context": 4, "dt.eval_episodes": 200,
                                          "dt.eval_interval": 2, "dt.online_episodes": 3000,
                                          "train.torch_threads": 1})
    summary = train("light_button", config, tmp_path / "run", online=True, live=False)
    assert summary["evaluation"][0]["target"] == 8.0 and summary["evaluation"][0]["score"] == 1.0
    assert summary["episodes"] < 3000  # stopped on achieving the target


def test_the_episode_limit_is_the_envs_own():
    assert episode_limit("delayed_reward", {"delay": 3}) == 4
    assert episode_limit("light_button", load_config("light_button", {"env.horizon": 8})["env"]) == 8
    assert episode_limit("cartpole", {}) == 500
    with pytest.raises(ValueError, match="gym:Acrobot-v1 declares no episode limit"):
        episode_limit("gym:Acrobot-v1", {})


def test_settings_left_to_the_env_follow_its_options():
    config = load_config("light_button", {"env.horizon": 32})
    follow_env("light_button", config)
    assert config["dt"]["eval_targets"] == [32.0] and config["dt"]["return_scale"] == 32.0
    config = load_config("light_button", {"env.horizon": 32, "dt.eval_targets": [10.0], "dt.return_scale": 5.0})
    follow_env("light_button", config)  # what the user sets wins
    assert config["dt"]["eval_targets"] == [10.0] and config["dt"]["return_scale"] == 5.0
    config = load_config("gym:Acrobot-v1")
    with pytest.raises(ValueError, match=r"declares no largest return .* set --dt.eval_targets and --dt.return_scale"):
        follow_env("gym:Acrobot-v1", config)


def test_online_rollouts_run_without_dropout(tmp_path, monkeypatch):
    """Every rollout, the first one (before any training) too, runs the
    model in eval mode; training steps in train mode."""
    import puffer.trainer.dt as dt_trainer
    modes = {"rollout": set(), "training": set()}
    run_episodes, make_model_ = dt_trainer.run_episodes, dt_trainer.make_model

    def recording_model(*args):
        model, model_args = make_model_(*args)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.register_forward_hook(lambda m, i, o: modes[
                    "rollout" if torch.is_inference_mode_enabled() else "training"].add(m.training))
        return model, model_args

    monkeypatch.setattr(dt_trainer, "make_model", recording_model)
    config = load_config("light_button", {"env.horizon": 4, "dt.context": 4, "dt.eval_interval": 100,
                                          "dt.online_episodes": 256 + 64, "dt.eval_episodes": 16,
                                          "train.torch_threads": 1})
    train("light_button", config, tmp_path / "run", online=True, live=False)
    assert modes == {"rollout": {False}, "training": {True}}
