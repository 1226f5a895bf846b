"""PPO checkpoints and resumes, learns from async batches and keeps its
buffers; the probes (tests/test_probe.py) show that it learns."""
import json
import types

import gymnasium
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


def test_checkpoint_resume_continues_the_run(tmp_path):
    config = load_config("light_button", {"train.total_steps": 4096, "train.checkpoint_interval": 1})
    first = train("light_button", config, tmp_path, live=False)
    assert first["global_step"] == 4096
    config["train"]["total_steps"] = 8192
    second = train("light_button", config, tmp_path, resume=load_checkpoint(tmp_path), live=False)
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


def test_failed_start_leaves_no_run_directory(tmp_path):
    config = load_config("light_button", {"train.num_minibatches": 3})
    with pytest.raises(ValueError, match="num_minibatches"):
        train("light_button", config, tmp_path / "run", live=False)
    assert not (tmp_path / "run").exists()


def test_resume_keeps_the_kl_reference(tmp_path):
    """The KL anchor of a resumed run is the --init policy, not a new one."""
    overrides = {"train.torch_threads": 1, "train.total_steps": 4096}
    init = train("light_button", load_config("light_button", overrides), tmp_path / "init", live=False)
    config = load_config("light_button", {**overrides, "train.kl_coef": 0.5, "train.checkpoint_interval": 1})
    train("light_button", config, tmp_path / "tuned", init=init["checkpoint"], live=False)
    config["train"]["total_steps"] = 8192
    train("light_button", config, tmp_path / "tuned", resume=load_checkpoint(tmp_path / "tuned"), live=False)
    reference = load_checkpoint(tmp_path / "tuned")["reference"]
    for name, weights in load_checkpoint(tmp_path / "init")["policy"].items():
        assert torch.equal(reference[name], weights), name
    kl = [json.loads(line)["kl_to_reference"] for line in open(tmp_path / "tuned" / "metrics.jsonl")]
    assert len(kl) == 8 and kl[4] < 3 * max(kl[:4]) + 0.01, kl  # no jump at the resume (update 5)


class EndsAtItsLimit(gymnasium.Env):
    """Pays 1 a step and terminates after 5 steps, on the step where a
    TimeLimit of 5 also truncates it; observes the step mod 5, so its final
    observation is its first one."""
    observation_space = gymnasium.spaces.Box(0.0, 1.0, (5,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.eye(5, dtype=np.float32)[0], {}

    def step(self, action):
        self.t += 1
        return np.eye(5, dtype=np.float32)[self.t % 5], 1.0, self.t == 5, False, {}


def test_a_step_both_terminal_and_truncated_is_not_bootstrapped(tmp_path):
    # True value of the first step: 1 + 0.9 + ... + 0.9^4 = 4.1. Bootstrapped
    # from the final observation (= the first), it would grow to 1 / (1 - 0.9^5) * 4.1 = 10.
    gymnasium.register("puffer_test/EndsAtItsLimit-v0", entry_point=EndsAtItsLimit, max_episode_steps=5)
    name = "gym:puffer_test/EndsAtItsLimit-v0"
    summary = train(name, load_config(name, {
        "vec.backend": "serial", "vec.num_envs": 16, "train.torch_threads": 1, "train.gamma": 0.9,
        "train.learning_rate": 3e-3, "train.total_steps": 40_000}), tmp_path / "run", live=False)
    saved = load_checkpoint(summary["checkpoint"])
    policy = make_policy(saved["config"]["policy"], EndsAtItsLimit.observation_space, EndsAtItsLimit.action_space)
    policy.load_state_dict(saved["policy"])
    with torch.no_grad():
        value = policy(torch.eye(5)[:1], None, None)[1]
    assert value.item() == pytest.approx(sum(0.9 ** k for k in range(5)), rel=0.1)


def run_as_rank(tmp_path, monkeypatch, env_name, rank, overrides, init=None):
    """Trains as rank `rank` of 2 in this process, with a stand-in for
    torch.distributed that leaves each rank on its own; returns the first
    observations after reset and the actions of the first rollout step."""
    import puffer.trainer.distributed as distributed
    import puffer.trainer.ppo as ppo
    fake_dist = types.SimpleNamespace(
        init_process_group=lambda *a, **k: None, destroy_process_group=lambda: None,
        barrier=lambda: None, broadcast=lambda *a, **k: None, all_reduce=lambda flat: flat.mul_(2),
        all_gather=lambda gathered, flat: [g.copy_(flat) for g in gathered])
    seen = {}
    make_env = ppo.make_env

    def recording_env(*args):
        env = make_env(*args)
        reset, send = env.reset, env.send
        env.reset = lambda **kw: (reset(**kw), seen.setdefault("obs", env.observations.copy()))[0]
        env.send = lambda actions: (seen.setdefault("actions", actions.copy()), send(actions))[1]
        return env

    monkeypatch.setattr(distributed, "dist", fake_dist)
    monkeypatch.setattr(ppo, "make_env", recording_env)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", str(rank))
    config = load_config(env_name, {"train.torch_threads": 1, "train.total_steps": 2048, **overrides})
    train(env_name, config, tmp_path / f"rank{rank}", init=init, live=False)
    return seen


def test_ranks_draw_their_own_noise_and_env_seeds(tmp_path, monkeypatch):
    # From the same weights, rank 0 and rank 1 sample their first actions
    # with independent noise: 4 near-equally likely buttons agree about a
    # quarter of the time (with the same noise, about 90%).
    init = train("light_button", load_config("light_button", {"train.total_steps": 1024}), tmp_path / "init",
                 live=False)["checkpoint"]
    ranks = [run_as_rank(tmp_path, monkeypatch, "light_button", rank, {"vec.num_envs": 256}, init)
             for rank in (0, 1)]
    agreement = (ranks[0]["actions"] == ranks[1]["actions"]).mean()
    assert agreement < 0.5, agreement
    # Gymnasium envs seeded seed + index: rank 1's envs must not repeat rank 0's.
    gym = [run_as_rank(tmp_path, monkeypatch, "gym:CartPole-v1", rank,
                       {"vec.backend": "serial", "vec.num_envs": 4, "train.horizon": 256})["obs"] for rank in (0, 1)]
    assert len({row.tobytes() for row in np.concatenate(gym)}) == 8


@pytest.mark.gpu
def test_resume_on_cuda_restores_both_random_states(tmp_path):
    config = load_config("light_button", {"train.device": "cuda", "train.total_steps": 2048})
    train("light_button", config, tmp_path, live=False)
    saved = load_checkpoint(tmp_path)
    assert saved["torch_rng"].device.type == "cpu" and saved["cuda_rng"] is not None
    config["train"]["total_steps"] = 4096
    assert train("light_button", config, tmp_path, resume=load_checkpoint(tmp_path), live=False)["global_step"] == 4096


def test_adam_step_is_adams_own_step_exactly():
    from puffer.trainer.ppo import adam_step
    start, grads = torch.randn(300), torch.randn(6, 300)
    runs = []
    for step in (lambda optimizer: optimizer.step(), adam_step):
        flat = torch.nn.Parameter(start.clone())
        optimizer = torch.optim.Adam([flat], lr=1e-2, eps=1e-5, fused=True)
        for i, grad in enumerate(grads):
            optimizer.param_groups[0]["lr"] = 1e-2 * (1 - i / len(grads))  # annealed, as train() does
            flat.grad = grad.clone()
            step(optimizer)
        runs.append((flat.detach(), optimizer.state_dict()["state"][0]))
    (adam, adam_state), (ours, our_state) = runs
    assert torch.equal(adam, ours) and not torch.equal(ours, start)
    assert all(torch.equal(adam_state[key], our_state[key]) for key in ("step", "exp_avg", "exp_avg_sq"))
