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


def test_async_multiprocessing_batches_learn(tmp_path):
    # Two batches of 32 envs over 2 workers: the policy acts on one batch
    # while the other steps (EnvPool style).
    summary, result = run(tmp_path, "light_button", **{
        "vec.backend": "multiprocessing", "vec.num_workers": 2, "vec.batch_size": 32})
    assert result["mean_return"] == 16.0 and result["score"] == 1.0


def test_rollout_reuses_its_buffers(tmp_path, monkeypatch):
    """No allocation in the loop: every rollout step hands the policy a row of
    the storage allocated before the loop, and the env the same actions buffer."""
    import puffer.trainer.ppo as ppo
    obs_pointers, sent = set(), []
    make_env, make_policy_ = ppo.make_env, ppo.make_policy

    def recording_env(*args):
        env = make_env(*args)
        send = env.send
        env.send = lambda actions: (sent.append((actions is env.actions, actions.ctypes.data)), send(actions))
        return env

    def recording_policy(*args):
        policy = make_policy_(*args)
        policy.register_forward_pre_hook(
            lambda _, inputs: obs_pointers.add(inputs[0].data_ptr()) if torch.is_inference_mode_enabled()
            and inputs[0].shape[0] == 64 else None)
        return policy

    monkeypatch.setattr(ppo, "make_env", recording_env)
    monkeypatch.setattr(ppo, "make_policy", recording_policy)
    horizon = 16
    run(tmp_path, "light_button", **{"vec.num_envs": 64, "train.horizon": horizon,
                                     "train.total_steps": 64 * horizon * 5})
    # horizon rows of the storage, plus the env's own buffer for the bootstrap value
    assert len(obs_pointers) == horizon + 1
    assert len(sent) == horizon * 5 and all(same for same, _ in sent)
    assert len({address for _, address in sent}) == 1
