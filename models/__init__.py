"""Policies. `make_policy` builds the one named by the config's [policy] type."""
import inspect

from puffer.models.gpt import GPTPolicy
from puffer.models.lstm import LSTMPolicy
from puffer.models.mlp import MLPPolicy

POLICIES = {"mlp": MLPPolicy, "lstm": LSTMPolicy, "gpt": GPTPolicy}


def make_policy(policy_config, observation_space, action_space):
    """The policy of [policy] `type`, given those of the section's keys that
    its constructor takes (num_heads, say, only matters to gpt)."""
    kind = policy_config["type"]
    if kind not in POLICIES:
        raise ValueError(f"unknown policy type {kind!r}; choose from {', '.join(POLICIES)}")
    cls = POLICIES[kind]
    accepted = inspect.signature(cls).parameters
    options = {k: v for k, v in policy_config.items() if k != "type" and k in accepted}
    return cls(observation_space, action_space, **options)
