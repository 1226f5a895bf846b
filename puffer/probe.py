"""`puffer probe`: the trainer's self-check. Each probe trains PPO (or the
decision transformer, online) for a fixed budget on a probe env whose right
answer is known (envs/probes/), then checks the answer: the greedy policy's
return (the decision transformer's at the largest return), or the critic's
values where the probe tests the critic. A failure names the capability
that broke and what usually breaks it; RL bugs give no error, only an agent
that does not learn."""
import contextlib
import io
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch

import puffer
from puffer.config import load_config

ALGOS = ("ppo", "dt")
POLICIES = ("mlp", "lstm")
# An LSTM policy large enough for the memory probe, for every probe it runs.
LSTM_OPTIONS = {"policy.type": "lstm", "policy.num_layers": 1, "policy.hidden_size": 128}


@dataclass
class Probe:
    name: str
    capability: str  # what passing shows the trainer can do
    env: str
    overrides: dict
    check: str       # "return": the greedy return reaches `expected`; "values": the critic's at `observations`
    expected: object
    hint: str        # what a failure usually means
    observations: list = field(default_factory=list)
    needs_memory: bool = False
    dt: dict = None  # overrides for the decision transformer's form of it (online); None: it has none


PROBES = [
    Probe("acting", "acting on the observation", "light_button", {}, "return", 16.0,
          "the policy ignores what it sees, or the advantage has the wrong sign: check the sign of the "
          "policy-gradient loss and that each action is stored with the observation it was chosen on",
          dt={"env.horizon": 8, "dt.context": 4}),
    Probe("value", "value learning", "constant_reward",
          {"env.length": 5, "train.gamma": 1.0, "train.total_steps": 100_000}, "values",
          [5.0, 4.0, 3.0, 2.0, 1.0],
          "the critic does not learn returns: check the value loss (its sign, vf_coef), that the "
          "returns are advantages + values, and that terminal steps are not bootstrapped",
          observations=[[1.0], [0.8], [0.6], [0.4], [0.2]]),
    Probe("discounting", "discounting", "constant_reward",
          {"env.length": 5, "train.gamma": 0.8, "train.total_steps": 100_000}, "values",
          [(1 - 0.8 ** k) / 0.2 for k in (5, 4, 3, 2, 1)],
          "returns are discounted wrongly: gamma not applied to the next value, or applied twice",
          observations=[[1.0], [0.8], [0.6], [0.4], [0.2]]),
    Probe("truncation", "bootstrapping at truncation", "light_button",
          {"train.gamma": 0.9, "train.total_steps": 200_000}, "values",
          [1.0 / (1.0 - 0.9)] * 4,  # bootstrapped at the truncation, every step is worth the same
          "the value is not bootstrapped at truncation: a cut-off episode was treated as ended "
          "(its last step needs gamma * V(final observation))",
          observations=np.eye(4).tolist()),
    Probe("credit", "credit assignment over a delay", "delayed_reward", {}, "return", 1.0,
          "the reward does not reach the action that earned it: GAE cut short or reset on steps that "
          "are not episode ends, or bootstrapped across a terminal (the decision transformer: "
          "returns-to-go not counted down by each reward)", dt={}),
    Probe("continuous", "continuous actions", "continuous_target", {}, "return", 7.5,
          "continuous actions are broken: the Gaussian head's log-probability or entropy, or the "
          "actions stored for the update differ from those sent"),
    Probe("memory", "memory", "light_button",
          {"env.delay": 2, "vec.num_envs": 128, "train.learning_rate": 5e-3, "train.total_steps": 400_000},
          "return", 16.0,
          "the recurrent state is not carried from step to step, not reset at episode starts, or "
          "minibatches do not start from the rollout's start state", needs_memory=True),
    Probe("exploration", "light_button hard: exploring past an early habit", "light_button",
          {"env.hard": True, "env.show_step": True, "env.horizon": 4, "train.ent_coef": 0.2,
           "train.norm_adv": False, "train.total_steps": 500_000}, "return", 4.0,
          "the policy stops exploring before it finds the later steps' buttons: check the entropy "
          "bonus (its sign, ent_coef; the decision transformer's online_entropy_coef)",
          dt={"env.hard": True, "env.show_step": True, "env.horizon": 4, "dt.context": 4,
              "dt.online_episodes": 5000}),
]


@torch.no_grad()
def critic_values(saved, env_name, observations):
    """The critic's values of `observations` seen in order as one episode (a
    recurrent critic's depend on what came before)."""
    from puffer.trainer.checkpoint import load_policy
    env = puffer.make(env_name, **saved["config"]["env"])
    policy = load_policy(saved, env)
    env.close()
    state, values = policy.initial_state(1, "cpu"), []
    for step, obs in enumerate(observations):
        _, value, state = policy(torch.tensor([obs], dtype=torch.float32), state, torch.tensor([float(step == 0)]))
        values.append(value.item())
    return np.array(values)


def run_probe(probe, policy="mlp", seed=1, algo="ppo"):
    """Trains and checks one probe: a dict with passed, detail and seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        if algo == "dt":
            from puffer.trainer.dt import train
            overrides = {**probe.dt, "dt.eval_interval": 2, "train.seed": seed, "train.torch_threads": 1}
            with contextlib.redirect_stdout(io.StringIO()):
                evaluation = train(probe.env, load_config(probe.env, overrides), run_dir, online=True,
                                   live=False)["evaluation"][0]
            got = evaluation["mean_return"]
            passed = got >= evaluation["target"] - 1e-6
            detail = f"return {got:.3g} at target {evaluation['target']:g}"
            return result(probe, passed, detail, start)
        from puffer.trainer.checkpoint import load_checkpoint
        from puffer.trainer.evaluate import evaluate
        from puffer.trainer.ppo import train
        overrides = {**(LSTM_OPTIONS if policy == "lstm" else {}), **probe.overrides,
                     "train.seed": seed, "train.torch_threads": 1, "train.log_interval": 1e9}
        with contextlib.redirect_stdout(io.StringIO()):  # the run's own last metrics line
            summary = train(probe.env, load_config(probe.env, overrides), run_dir, live=False)
        if probe.check == "return":
            got = evaluate(probe.env, summary["checkpoint"], episodes=200)["mean_return"]
            passed = got >= probe.expected - 1e-6
            detail = f"greedy return {got:.3g}, needs at least {probe.expected:g}"
        else:
            got = critic_values(load_checkpoint(summary["checkpoint"]), probe.env, probe.observations)
            passed = bool(np.allclose(got, probe.expected, rtol=0.1, atol=0.1))
            detail = (f"values {', '.join(f'{v:.2f}' for v in got)}; "
                      f"expected {', '.join(f'{v:.2f}' for v in probe.expected)} (within 0.1 + 10%)")
    return result(probe, passed, detail, start)


def result(probe, passed, detail, start):
    return {"probe": probe.name, "capability": probe.capability, "passed": passed, "detail": detail,
            "seconds": time.perf_counter() - start, "hint": None if passed else probe.hint}


def run_probes(policy="mlp", names=None, seed=1, algo="ppo", print_fn=print):
    """Runs the probes (all, or those `names`), printing a line each and then
    the table; returns the results. With policy "mlp" the memory probe is
    left out (a policy without memory cannot pass it); with algo "dt", the
    probes without a decision-transformer form (the critic's, continuous
    actions, which online rollouts cannot sample, and memory) are."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; choose from {', '.join(ALGOS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    if algo == "dt" and policy != "mlp":
        raise ValueError("a policy is for --algo ppo: the decision transformer is its own model")
    known = [p.name for p in PROBES]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ValueError(f"unknown probe(s) {', '.join(unknown)}; the probes are: {', '.join(known)}")
    chosen = [p for p in PROBES if (names is None or p.name in names)
              and (p.dt is not None if algo == "dt" else policy == "lstm" or not p.needs_memory)]
    if not chosen:
        raise ValueError(f"none of {', '.join(names)} is a probe for --algo {algo}")
    results = []
    for probe in chosen:
        results.append(run_probe(probe, policy, seed, algo))
        r = results[-1]
        print_fn(f"{'pass' if r['passed'] else 'FAIL'}  {r['probe']:12} {r['capability']} "
                 f"({r['detail']}; {r['seconds']:.1f} s)")
    print_fn(format_table(results))
    return results


def format_table(results):
    lines = [f"{'probe':12} {'capability':48} result", "-" * 68]
    for r in results:
        lines.append(f"{r['probe']:12} {r['capability']:48} {'pass' if r['passed'] else 'FAIL'}")
    failed = [r for r in results if not r["passed"]]
    for r in failed:
        lines.append(f"\n{r['probe']} failed: {r['detail']}.\n  Usually: {r['hint']}.")
    lines.append(f"\n{len(results) - len(failed)} of {len(results)} probes passed")
    return "\n".join(lines)
