"""puffer envs as native PufferLib envs, so that `pufferlib.vector` (from the
optional extra pufferlib-core) can step them:

    import pufferlib.vector
    from puffer.pufferlib_env import PufferlibEnv
    vecenv = pufferlib.vector.make(PufferlibEnv, env_kwargs={"name": "cartpole", "num_envs": 512},
                                   backend="Multiprocessing", num_envs=4, num_workers=4)
"""
from types import SimpleNamespace

import numpy as np
import pufferlib

import puffer


class PufferlibEnv(pufferlib.PufferEnv):
    """`num_envs` copies of puffer env `name` (with its `options`) as one
    native PufferLib env of `num_agents = num_envs` agents, writing into
    PufferLib's buffers `buf` (its own when None). PufferLib wants infos as a
    list: each step's holds the env's `log()` when an episode finished.
    `seed` is PufferLib's; the envs are seeded by `reset(seed)` as usual."""

    def __init__(self, name, num_envs=1, buf=None, seed=0, **options):
        if name.startswith(puffer.GYM_PREFIX):
            raise ValueError(f"{name}: for a Gymnasium env use PufferLib's own "
                             f"pufferlib.emulation.GymnasiumPufferEnv")
        probe = puffer.make(name, num_envs=1, **options)  # the spaces may depend on the options
        self.single_observation_space = probe.single_observation_space
        self.single_action_space = probe.single_action_space
        probe.close()
        self.num_agents = num_envs
        super().__init__(buf)  # sets observations, actions, rewards, terminals, truncations
        buffers = SimpleNamespace(observations=self.observations, actions=self.actions,
                                  rewards=self.rewards, terminals=self.terminals,
                                  truncations=self.truncations,
                                  final_observations=np.zeros_like(self.observations))
        self.env = puffer.env_class(name)(num_envs=num_envs, buffers=buffers, **options)

    def reset(self, seed=None):
        self.env.reset(seed=seed)
        return self.observations, []

    def step(self, actions):
        self.env.step(actions)
        log = self.env.log()
        return self.observations, self.rewards, self.terminals, self.truncations, [log] if log else []

    def close(self):
        self.env.close()
