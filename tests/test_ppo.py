"""PPO solves every probe to its documented optimum (with generous step
budgets), bootstraps truncated episodes, and checkpoints and resumes."""
import json

import numpy as np
import pytest
import torch

from puffer.config import load_config
from puffer.models import make_policy
from puffer.trainer.checkpoint import load_checkpoint
from puffer.trainer.evaluate import evaluate
from puffer.trainer.ppo import train


def run(tmp_path, env_name, **overrides):
    # One torch thread: two would fight other processes on a busy 2-core machine.
    config = load_config(env_name, {"train.torch_threads": 1, **overrides})
    summary = train(env_name, config, tmp_path / "run", live=False)
    return summary, evaluate(env_name, summary["checkpoint"], episodes=200)


def test_light_button(tmp_path):
    summary, result = run(tmp_path, "light_button")
    assert result["mean_return"] == 16.0 and result["score"] == 1.0
    assert summary["score"] == 1.0  # during training too


def test_constant_reward(tmp_path):
    _, result = run(tmp_path, "constant_reward", **{"env.length": 5})
    assert result["mean_return"] == 5.0 and result["score"] == 1.0


def test_delayed_reward(tmp_path):
    _, result = run(tmp_path, "delayed_reward")
    assert result["mean_return"] == 1.0 and result["score"] == 1.0


def test_continuous_target(tmp_path):
    # The optimum (8) needs an exact action; within 0.1 of the target on
    # every step (score 1.0) is what the probe asks of a Gaussian policy.
    _, result = run(tmp_path, "continuous_target")
    assert result["mean_return"] > 7.5 and result["score"] == 1.0


def test_memory_probe_with_lstm(tmp_path):
    # Press the button lit two steps ago: only a policy with memory can.
    _, result = run(tmp_path, "light_button", **{
        "env.delay": 2, "policy.type": "lstm", "policy.num_layers": 1, "policy.hidden_size": 128,
        "vec.num_envs": 128, "train.learning_rate": 5e-3, "train.total_steps": 300_000})
    assert result["mean_return"] == 16.0 and result["score"] == 1.0


def test_truncation_is_bootstrapped(tmp_path):
    # light_button always truncates at the horizon, and its observation does
    # not show the step, so one value must fit every step. Bootstrapped at the
    # truncation, the return of a perfect policy is 1 + gamma + gamma^2 + ...
    # = 1 / (1 - gamma) = 10 from every step; treated as an end, it would
    # average about 6.4 over the 16 steps.
    summary, _ = run(tmp_path, "light_button", **{"train.gamma": 0.9, "train.total_steps": 200_000})
    saved = load_checkpoint(summary["checkpoint"])
    policy = make_policy(saved["config"]["policy"], *spaces_of("light_button"))
    policy.load_state_dict(saved["policy"])
    with torch.no_grad():
        values = policy(torch.eye(4), None, None)[1]
    np.testing.assert_allclose(values.numpy(), 10.0, rtol=0.1)


def spaces_of(name):
    import puffer
    env = puffer.make(name)
    return env.single_observation_space, env.single_action_space


def test_checkpoint_resume_continues_the_run(tmp_path):
    config = load_config("light_button", {"train.total_steps": 4096, "train.checkpoint_interval": 1})
    first = train("light_button", config, tmp_path, live=False)
    assert first["global_step"] == 4096
    config["train"]["total_steps"] = 8192
    second = train("light_button", config, tmp_path, resume=tmp_path, live=False)
    assert second["global_step"] == 8192
    saved = load_checkpoint(tmp_path)
    assert saved["global_step"] == 8192 and saved["update"] == 8
    steps = [json.loads(line)["global_step"] for line in open(tmp_path / "metrics.jsonl")]
    assert steps == list(range(1024, 8193, 1024))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary checkpoint left behind


def test_bad_minibatch_split_is_an_error(tmp_path):
    config = load_config("light_button", {"train.num_minibatches": 3})
    with pytest.raises(ValueError, match="num_minibatches"):
        train("light_button", config, tmp_path, live=False)
