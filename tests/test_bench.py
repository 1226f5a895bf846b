"""puffer.bench: result shape, compare-target errors, and the numpy CartPole
baseline against Gymnasium's CartPole dynamics. No speed assertions."""
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

import puffer
from puffer import bench
from puffer.bench import NumpyCartPole

KEYS = {"env", "impl", "id", "num_envs", "steps", "env_steps", "seconds", "sps", "note"}


def test_bench_env_light_button():
    result = bench.bench_env("light_button", num_envs=64, seconds=0.2)
    assert KEYS <= set(result)
    assert result["env"] == "light_button" and result["impl"] == "puffer" and result["num_envs"] == 64
    assert result["steps"] > 0 and result["env_steps"] == 64 * result["steps"]
    assert result["seconds"] >= 0.2
    assert result["sps"] > 0
    assert result["sps"] == pytest.approx(result["env_steps"] / result["seconds"])


def test_bench_env_passes_env_options():
    result = bench.bench_env("light_button", num_envs=8, seconds=0.05, num_buttons=7, horizon=3)
    assert result["sps"] > 0
    with pytest.raises(TypeError, match="unknown option"):
        bench.bench_env("light_button", num_envs=8, seconds=0.05, nonsense=1)


def test_main_bench_prints_table_and_returns_results():
    lines = []
    results = bench.main_bench("light_button", num_envs=32, seconds=0.1, print_fn=lines.append)
    assert len(results) == 1 and results[0]["puffer_speedup"] == 1.0
    text = "\n".join(lines)
    assert "light_button" in text and "puffer" in text and "SPS" in text


def test_numpy_reference_bench():
    result = bench.bench_reference("cartpole", "numpy", num_envs=16, seconds=0.05)
    assert KEYS <= set(result) and result["impl"] == "numpy" and result["sps"] > 0
    assert "numpy" in bench.format_table([result])


def test_main_bench_cartpole_with_numpy_reference():
    try:
        puffer.env_class("cartpole")
    except (ImportError, AttributeError):
        pytest.skip("the C cartpole is not built")
    lines = []
    results = bench.main_bench("cartpole", num_envs=16, seconds=0.05, compare=["numpy", "numpy"],
                               print_fn=lines.append)
    assert [r["impl"] for r in results] == ["puffer", "numpy"]
    assert all(r["sps"] > 0 and r["puffer_speedup"] > 0 for r in results)
    assert "numpy" in "\n".join(lines)


def test_unavailable_reference_is_reported_not_raised(monkeypatch):
    def missing(impl, ref_id, num_envs, name):
        raise ImportError("envpool is not installed")
    monkeypatch.setattr(bench, "_make_reference", missing)
    result = bench.bench_reference("cartpole", "envpool", num_envs=4, seconds=0.05)
    assert result["sps"] is None and "not installed" in result["note"]
    assert "n/a" in bench.format_table([result])


def test_unknown_compare_target_errors_clearly():
    with pytest.raises(ValueError, match="unknown compare target 'gym'.*gymnasium, envpool, numpy, pufferlib"):
        bench.main_bench("light_button", num_envs=4, seconds=0.05, compare=["gym"])


def test_compare_without_reference_names_those_that_exist():
    with pytest.raises(ValueError, match="no numpy reference for lunar_lander.*gymnasium, envpool, pufferlib"):
        bench.check_compare("lunar_lander", ["numpy"])
    with pytest.raises(ValueError, match="no gymnasium reference for light_button; references for "
                                         "light_button: pufferlib"):
        bench.main_bench("light_button", num_envs=4, seconds=0.05, compare=["gymnasium"])
    assert bench.check_compare("cartpole", ["numpy", "gymnasium", "numpy"]) == ["numpy", "gymnasium"]


def test_unknown_env_errors():
    with pytest.raises(ValueError, match="unknown env"):
        bench.main_bench("no_such_env", num_envs=4, seconds=0.05)


def test_action_pool_shapes_and_dtypes():
    from gymnasium import spaces
    pool = bench.action_pool(spaces.Discrete(3, start=1), 10)
    assert len(pool) == bench.POOL_SIZE and pool[0].shape == (10,) and pool[0].dtype == np.int32
    assert all(((1 <= a) & (a <= 3)).all() for a in pool)
    pool = bench.action_pool(spaces.Box(-2.0, 2.0, (3,), np.float32), 10)
    assert pool[0].shape == (10, 3) and pool[0].dtype == np.float32
    assert all((np.abs(a) <= 2).all() for a in pool)


def test_pinning_restores_affinity():
    import os
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity here")
    before = os.sched_getaffinity(0)
    with bench.pinned_to_one_core() as cpu:
        assert cpu is None or os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before


def test_numpy_cartpole_matches_gymnasium_dynamics():
    """Each step, every Gymnasium env is set to the numpy env's (float32) state;
    both take the same random action; the next observation, reward and
    termination must agree within 1e-5. Finished episodes are checked through
    final_observations, so auto-reset is covered too."""
    n, steps = 32, 300
    ours = NumpyCartPole(n, seed=1)
    obs, _ = ours.reset()
    refs = [CartPoleEnv() for _ in range(n)]
    for ref in refs:
        ref.reset(seed=0)
    rng = np.random.default_rng(2)
    terminations = 0
    for t in range(steps):
        start = obs.copy()
        actions = rng.integers(0, 2, n, dtype=np.int32)
        expected = []
        for i, ref in enumerate(refs):
            ref.state = start[i].astype(np.float64)
            ref.steps_beyond_terminated = None
            expected.append(ref.step(actions[i])[:3])
        obs, rewards, terminals, truncations, infos = ours.step(actions)
        assert not truncations.any()
        for i, (ref_obs, ref_reward, ref_terminated) in enumerate(expected):
            assert terminals[i] == ref_terminated, (t, i)
            assert rewards[i] == ref_reward
            got = infos["final_observations"][i] if terminals[i] else obs[i]
            np.testing.assert_allclose(got, ref_obs, rtol=0, atol=1e-5, err_msg=f"step {t}, env {i}")
            if terminals[i]:  # auto-reset to Gymnasium's start distribution
                assert (np.abs(obs[i]) <= 0.05).all()
        terminations += int(terminals.sum())
    assert terminations > 50  # random play ends episodes often: the boundary is exercised


def test_numpy_cartpole_free_run_tracks_gymnasium():
    """Without re-syncing, whole random-action episodes stay within 1e-5 of
    Gymnasium's float64 trajectories from the same starts."""
    ours = NumpyCartPole(1, seed=3)
    obs, _ = ours.reset()
    ref = CartPoleEnv()
    ref.reset(seed=0)
    rng = np.random.default_rng(4)
    for episode in range(20):
        ref.state, ref.steps_beyond_terminated = obs[0].astype(np.float64), None
        for t in range(500):
            action = rng.integers(0, 2, 1, dtype=np.int32)
            ref_obs, _, ref_terminated, _, _ = ref.step(action[0])
            obs, _, terminals, _, infos = ours.step(action)
            got = infos["final_observations"][0] if terminals[0] else obs[0]
            np.testing.assert_allclose(got, ref_obs, rtol=0, atol=1e-5, err_msg=f"episode {episode} step {t}")
            assert terminals[0] == ref_terminated
            if ref_terminated:
                break
        assert ref_terminated


def test_numpy_cartpole_truncates_at_500_steps():
    env = NumpyCartPole(3, seed=0)
    env.reset()
    env.state[:] = 0.0
    env.steps[:] = [0, 498, 499]
    _, _, terminals, truncations, infos = env.step(np.zeros(3, np.int32))
    assert not terminals.any()
    assert truncations.tolist() == [False, False, True]
    assert env.steps.tolist() == [1, 499, 0]



def test_bench_all_measures_every_env_and_its_references():
    lines = []
    results = bench.bench_all(num_envs=16, seconds=0.02, print_fn=lines.append)
    expected = {"cartpole": ["gymnasium", "envpool", "numpy", "pufferlib"],
                "lunar_lander": ["gymnasium", "envpool", "pufferlib"]}  # from their ENVS records
    for name in puffer.ENVS:
        rows = [r for r in results if r["env"] == name]
        assert rows[0]["impl"] == "puffer" and rows[0]["sps"] > 0
        assert [r["impl"] for r in rows[1:]] == expected.get(name, ["pufferlib"])
        assert all(r["puffer_speedup"] or r["sps"] is None for r in rows)
    assert any("gymnasium" in line for line in lines)


def test_bench_training_reports_mfu():
    metrics = bench.bench_training("light_button", {"train.total_steps": 4096, "train.torch_threads": 1},
                                   print_fn=lambda *_: None)
    assert metrics["global_step"] >= 4096 and metrics["sps"] > 0
    assert 0 < metrics["mfu"] < 1 and metrics["flops_per_sample"] > 0
    assert sum(metrics[k] for k in ("env", "inference", "copies", "learning")) == pytest.approx(1.0)


def test_bench_text_training_prints_ppo_and_pretraining_rates_and_their_ratio():
    from tiny_gpt import TINY
    lines = []
    result = bench.bench_training("text", {**TINY, "rlhf.prompt_len": 8, "rlhf.gen_len": 8, "rlhf.batch_size": 8,
                                           "rlhf.minibatch_size": 4, "rlhf.updates": 3, "pretrain.batch_size": 8,
                                           "train.torch_threads": 1}, print_fn=lines.append)
    assert result["ppo_chars_per_second"] > 0 and result["pretrain_chars_per_second"] > 0
    assert result["ratio"] == pytest.approx(result["ppo_chars_per_second"] / result["pretrain_chars_per_second"])
    assert f"PPO / pretraining = {result['ratio']:.3f}" in lines[0]
    with pytest.raises(ValueError, match="needs at least 2, got 1"):
        bench.bench_training("text", {"rlhf.updates": 1})


def test_pufferlib_vector_reference_steps_our_env():
    pytest.importorskip("pufferlib.vector", reason="needs the optional pufferlib-core")
    result = bench.bench_reference("light_button", "pufferlib", num_envs=16, seconds=0.05)
    assert result["id"] == bench.PUFFERLIB_ID and result["sps"] > 0


def test_envpool_reference_steps_its_cartpole():
    result = bench.bench_reference("cartpole", "envpool", num_envs=4, seconds=0.05)
    assert result["impl"] == "envpool" and result["sps"] > 0, result
