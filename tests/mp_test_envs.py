"""Env classes for the multiprocessing error tests, in a module of their own
so that worker processes can import them by name (tests/ is on pytest's
pythonpath)."""
import time

from puffer.envs.probes.light_button.light_button import LightButton


class FailsInWorker(LightButton):
    """Builds fine with one env (the parent's probe), fails with more."""

    def __init__(self, num_envs=1, buffers=None, **kwargs):
        if num_envs > 1:
            raise KeyError(f"cannot build {num_envs} envs")
        super().__init__(num_envs=num_envs, buffers=buffers, **kwargs)


class HangsOnAction3(LightButton):
    """Sleeps for a minute when every action is 3."""

    def step(self, actions):
        if (self.actions == 3).all():
            time.sleep(60)
        return super().step(actions)
