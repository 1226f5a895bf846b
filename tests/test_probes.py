"""The probe envs: each must give its documented optimal return (and score 1.0)
to a scripted optimal policy, and what chance predicts to simple baselines.

Every rollout steps 512 envs; a policy is `policy(obs, step) -> actions`,
where `step` is each env's step within its current episode, tracked here from
the terminal/truncation flags, as a trainer would have to."""
import numpy as np
import pytest

import puffer

NUM_ENVS = 512


def rollout(env, policy, episodes, seed=0):
    """Runs `policy` until every env has finished `episodes` episodes. Returns
    the first `episodes` returns of each env (num_envs, episodes), the number of
    terminals and truncations, and env.log() over everything that finished."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    step = np.zeros(n, np.int64)
    ret = np.zeros(n)
    returns = np.zeros((n, episodes))
    count = np.zeros(n, np.int64)
    all_returns, all_count, ends = 0.0, 0, {"terminal": 0, "truncation": 0}
    while count.min() < episodes:
        obs, rewards, terminals, truncations, _ = env.step(policy(obs, step))
        assert not (terminals & truncations).any()
        ret += rewards
        step += 1
        done = terminals | truncations
        ends["terminal"] += int(terminals.sum())
        ends["truncation"] += int(truncations.sum())
        all_returns += ret[done].sum()
        all_count += int(done.sum())
        keep = done & (count < episodes)
        returns[keep, count[keep]] = ret[keep]
        count[keep] += 1
        ret[done] = 0
        step[done] = 0
    log = env.log()
    # env.log() covers the same episodes the test counted.
    assert log["episodes"] == all_count
    assert log["episode_return"] == pytest.approx(all_returns / all_count, rel=1e-6, abs=1e-9)
    return returns, ends, log


def check_optimal(env, policy, optimum, length, end, episodes=3):
    returns, ends, log = rollout(env, policy, episodes)
    assert (returns == optimum).all()
    assert log["episode_return"] == optimum
    assert log["episode_length"] == length
    assert log["score"] == 1.0
    assert ends[end] == log["episodes"] and sum(ends.values()) == log["episodes"]


def check_mean(returns, mean, var):
    """The sample mean is within 4 standard errors of the expected mean."""
    se = np.sqrt(var / returns.size)
    assert abs(returns.mean() - mean) < 4 * se, (returns.mean(), mean, se)


# --- light_button -----------------------------------------------------------

def light_button_optimal(num_buttons, horizon, hard=False, delay=0, show_step=False):
    """Presses the right button, remembering past lights for `delay` and using
    the step (tracked, or read from the observation with show_step) for `hard`."""
    history = np.zeros((NUM_ENVS, horizon), np.int64)
    rows = np.arange(NUM_ENVS)

    def policy(obs, step):
        if show_step:
            shown = np.rint(obs[:, num_buttons] * horizon).astype(np.int64)
            assert (shown == step).all()
            step = shown
        history[rows, step] = obs[:, :num_buttons].argmax(1)
        target = history[rows, np.maximum(step - delay, 0)]
        if hard:
            target = (target + step) % num_buttons
        anything = (rows + step) % num_buttons  # before `delay` steps any press is right
        return np.where(step >= delay, target, anything).astype(np.int32)
    return policy


def always_zero(obs, step):
    return np.zeros(len(obs), np.int32)


LIGHT_BUTTON_VARIANTS = [
    dict(),
    dict(hard=True),
    dict(hard=True, show_step=True),
    dict(delay=3),
    dict(num_buttons=7, horizon=5),
    dict(num_buttons=3, horizon=9, hard=True, delay=2),
]


@pytest.mark.parametrize("options", LIGHT_BUTTON_VARIANTS, ids=str)
def test_light_button_optimal(options):
    options = {**puffer.env_options("light_button"), **options}
    env = puffer.make("light_button", num_envs=NUM_ENVS, **options)
    policy = light_button_optimal(options["num_buttons"], options["horizon"], options["hard"],
                                  options["delay"], options["show_step"])
    horizon = options["horizon"]
    check_optimal(env, policy, horizon, horizon, "truncation")


def chance_return(p, steps, free=0):
    """Mean and variance of the return when the first `free` presses are right
    and each later one is right with probability p, capped at `free + steps`:
    P(free + k) = p^k (1 - p) for k < steps, P(free + steps) = p^steps."""
    k = np.arange(steps + 1)
    pmf = np.where(k < steps, p ** k * (1 - p), p ** steps)
    mean = (pmf * k).sum()
    return free + mean, (pmf * (k - mean) ** 2).sum()


@pytest.mark.parametrize("options", [dict(), dict(hard=True), dict(delay=3)], ids=str)
def test_light_button_chance(options):
    # Always pressing button 0 is right with probability 1/4 at each step (in
    # hard mode too: lit + step is as uniform as lit), except during the first
    # `delay` steps, where every press is right.
    env = puffer.make("light_button", num_envs=NUM_ENVS, **options)
    delay = options.get("delay", 0)
    returns, _, log = rollout(env, always_zero, episodes=40)
    mean, var = chance_return(0.25, 16 - delay, free=delay)
    check_mean(returns, mean, var)
    assert log["score"] < 1e-3  # reaching the horizon has probability 4^-(16 - delay)


def test_light_button_default_chance_value():
    # Default: E[return] = sum_{k=1}^{16} (1/4)^k = (1/3)(1 - 4^-16).
    mean, _ = chance_return(0.25, 16)
    assert mean == pytest.approx((1 - 0.25 ** 16) / 3)


def test_light_button_hard_defeats_plain_policy():
    # In hard mode pressing the lit button is right at step 0 only (the offset
    # is step % 4), so every episode returns exactly 1.
    env = puffer.make("light_button", num_envs=NUM_ENVS, hard=True)
    returns, ends, log = rollout(env, light_button_optimal(4, 16), episodes=3)
    assert (returns == 1).all() and log["score"] == 0.0 and ends["truncation"] == 0


# --- constant_reward --------------------------------------------------------

@pytest.mark.parametrize("length", [1, 5, 100])
def test_constant_reward(length):
    env = puffer.make("constant_reward", num_envs=NUM_ENVS, length=length)

    def policy(obs, step):
        np.testing.assert_array_equal(obs[:, 0], np.float32(length - step) / np.float32(length))
        return np.zeros(len(obs), np.int32)
    check_optimal(env, policy, length, length, "terminal")
    assert (env.final_observations == 0).all()


def test_constant_reward_rejects_other_actions():
    env = puffer.make("constant_reward", num_envs=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.array([0, 1, 0, 0], np.int32))
    assert env.log() == {}


# --- delayed_reward ---------------------------------------------------------

def delayed_reward_policy(delay, answer):
    """At step 0 presses answer(cue); while waiting, presses at random (those
    presses do nothing) and checks that the observation hides the cue."""
    rng = np.random.default_rng(0)

    def policy(obs, step):
        np.testing.assert_array_equal(obs[:, 2], np.float32(step) / np.float32(delay + 1))
        assert (obs[step == 0, :2].sum(1) == 1).all() and (obs[step > 0, :2] == 0).all()
        noise = rng.integers(0, 2, len(obs))
        return np.where(step == 0, answer(obs[:, :2].argmax(1)), noise).astype(np.int32)
    return policy


@pytest.mark.parametrize("delay", [4, 0, 1, 10])
def test_delayed_reward_optimal(delay):
    env = puffer.make("delayed_reward", num_envs=NUM_ENVS, delay=delay)
    check_optimal(env, delayed_reward_policy(delay, lambda cue: cue), 1, delay + 1, "terminal")
    np.testing.assert_array_equal(env.final_observations, [[0, 0, 1]] * NUM_ENVS)


def test_delayed_reward_wrong_and_chance():
    env = puffer.make("delayed_reward", num_envs=NUM_ENVS)
    returns, _, log = rollout(env, delayed_reward_policy(4, lambda cue: 1 - cue), episodes=3)
    assert (returns == 0).all() and log["score"] == 0.0
    returns, _, log = rollout(env, always_zero, episodes=20)
    check_mean(returns, 0.5, 0.25)
    assert log["score"] == log["episode_return"]


def test_delayed_reward_paid_at_the_last_step_only():
    env = puffer.make("delayed_reward", num_envs=NUM_ENVS, delay=3)
    obs, _ = env.reset(seed=1)
    for t in range(8):
        actions = obs[:, :2].argmax(1).astype(np.int32)
        obs, rewards, terminals, _, _ = env.step(actions)
        assert (terminals == (t % 4 == 3)).all()
        assert (rewards == terminals).all()


# --- continuous_target ------------------------------------------------------

def copy_target(obs, step):
    return obs.copy()


@pytest.mark.parametrize("horizon", [8, 1, 3])
def test_continuous_target_optimal(horizon):
    env = puffer.make("continuous_target", num_envs=NUM_ENVS, horizon=horizon)
    check_optimal(env, copy_target, horizon, horizon, "truncation")


def test_continuous_target_random_actions():
    # Uniform actions: E[1 - |a - t|] = 1 - 2/3 per step, P(|a - t| <= 0.1) = 0.0975.
    env = puffer.make("continuous_target", num_envs=NUM_ENVS)
    rng = np.random.default_rng(0)
    returns, _, log = rollout(env, lambda obs, step: rng.uniform(-1, 1, obs.shape).astype(np.float32),
                              episodes=10)
    check_mean(returns, 8 / 3, 8 * 2 / 9)  # Var|a - t| = E(a - t)^2 - (2/3)^2 = 2/3 - 4/9
    assert log["score"] == pytest.approx(0.0975, abs=0.01)


def test_continuous_target_clips_and_rejects():
    env = puffer.make("continuous_target", num_envs=NUM_ENVS)
    obs, _ = env.reset(seed=2)
    target = obs[:, 0].copy()
    _, rewards, _, _, _ = env.step(np.full((NUM_ENVS, 1), 5.0, np.float32))
    np.testing.assert_allclose(rewards, 1 - np.abs(1 - target), atol=1e-6)
    target = env.observations[:, 0].copy()
    _, rewards, _, _, _ = env.step(np.full((NUM_ENVS, 1), -1e30, np.float32))
    np.testing.assert_allclose(rewards, 1 - np.abs(-1 - target), atol=1e-6)
    for bad in (np.nan, np.inf, -np.inf):
        actions = np.zeros((NUM_ENVS, 1), np.float32)
        actions[7] = bad
        before = env.observations.copy()
        with pytest.raises(ValueError, match=r"actions\[7, 0\]"):
            env.step(actions)
        np.testing.assert_array_equal(env.observations, before)


# --- all probes -------------------------------------------------------------

@pytest.mark.parametrize("name, options, message", [
    ("constant_reward", dict(length=0), r"length must be an integer in \[1, 1000000\], got 0"),
    ("constant_reward", dict(length=2.5), r"length must be an integer in \[1, 1000000\], got 2.5"),
    ("delayed_reward", dict(delay=-1), r"delay must be an integer in \[0, 1000000\], got -1"),
    ("delayed_reward", dict(delay="4"), r"delay must be an integer in \[0, 1000000\], got '4'"),
    ("continuous_target", dict(horizon=0), r"horizon must be an integer in \[1, 1000000\], got 0"),
    ("continuous_target", dict(horizon=10**7), r"horizon must be an integer in \[1, 1000000\], got 10000000"),
    ("light_button", dict(delay=16), r"delay must be an integer in \[0, 15\], got 16"),
    ("light_button", dict(horizon=3.7), r"horizon must be an integer in \[1, 1000000\], got 3.7"),
    ("light_button", dict(num_buttons=1), r"num_buttons must be an integer in \[2, 1024\]"),
    ("light_button", dict(num_buttons=True), r"num_buttons must be an integer"),
    ("light_button", dict(hard="yes"), r"hard must be True or False"),
])
def test_option_validation(name, options, message):
    with pytest.raises(ValueError, match=message):
        puffer.make(name, **options)
