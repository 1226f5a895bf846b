"""Policies. `make_policy` builds the one named by the config's [policy] type."""
from puffer.models.lstm import LSTMPolicy
from puffer.models.mlp import MLPPolicy

POLICIES = {"mlp": MLPPolicy, "lstm": LSTMPolicy}


def make_policy(policy_config, observation_space, action_space):
    kind = policy_config["type"]
    if kind not in POLICIES:
        raise ValueError(f"unknown policy type {kind!r}; choose from {', '.join(POLICIES)}")
    options = {k: v for k, v in policy_config.items() if k != "type"}
    return POLICIES[kind](observation_space, action_space, **options)
