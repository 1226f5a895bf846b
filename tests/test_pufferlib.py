"""pufferlib.vector (the optional extra pufferlib-core) steps puffer envs
through puffer.pufferlib_env.PufferlibEnv, on each of its backends."""
import numpy as np
import pytest

pufferlib_vector = pytest.importorskip(
    "pufferlib.vector", reason="needs the optional extra pufferlib-core (pip install -e .[pufferlib])")

import puffer  # noqa: E402
from puffer.pufferlib_env import PufferlibEnv  # noqa: E402

BACKENDS = {
    "PufferEnv": {},  # the env itself: one native env of num_envs agents
    "Serial": {"num_envs": 2},
    "Multiprocessing": {"num_envs": 2, "num_workers": 2, "overwork": True},
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_pufferlib_vector_steps_puffer_envs(backend):
    vecenv = pufferlib_vector.make(PufferlibEnv, env_kwargs={"name": "light_button", "num_envs": 4},
                                   backend=backend, **BACKENDS[backend])
    try:
        num_agents = 4 * BACKENDS[backend].get("num_envs", 1)
        obs, _ = vecenv.reset(seed=7)
        # Each copy of 4 envs is seeded from seed + its index, like puffer.make(...).reset(seed).
        assert np.array_equal(obs[:4], puffer.make("light_button", num_envs=4).reset(seed=7)[0])
        logs = []
        for _ in range(40):  # press the lit button: +1 every step, truncated after 16
            obs, rewards, terminals, truncations, infos = vecenv.step(obs.argmax(1).astype(np.int32))
            assert np.all(rewards == 1.0) and not terminals.any()
            logs += infos
        assert obs.shape == (num_agents, 4)
        assert logs and all(log["episode_return"] == 16.0 and log["score"] == 1.0 for log in logs)
        assert sum(log["episodes"] for log in logs) == 2 * num_agents  # two episodes per env
    finally:
        vecenv.close()


def test_continuous_actions_and_options():
    env = PufferlibEnv("lunar_lander", num_envs=3, continuous=True)
    assert env.actions.dtype == np.float32 and env.actions.shape == (3, 2)
    env.reset(seed=0)
    obs, rewards, *_ = env.step(np.zeros((3, 2), np.float32))
    assert obs.shape == (3, 8) and rewards.dtype == np.float32
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((3, 2), np.nan, np.float32))
    with pytest.raises(TypeError, match="continuos.*options are: continuous"):
        PufferlibEnv("lunar_lander", continuos=True)
    env.close()
