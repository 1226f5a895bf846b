"""`puffer probe`: every probe passes with PPO, and a deliberately broken
trainer fails the probe of the capability it broke, which names it."""
import numpy as np
import pytest

import puffer.trainer.ppo as ppo
from puffer.cli import main
from puffer.probe import PROBES, run_probe, run_probes


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_ppo_passes_every_probe(probe):
    result = run_probe(probe, "lstm" if probe.needs_memory else "mlp")
    assert result["passed"], result["detail"]


DT_PROBES = [p for p in PROBES if p.dt is not None]


@pytest.mark.parametrize("probe", DT_PROBES, ids=[p.name for p in DT_PROBES])
def test_the_decision_transformer_passes_its_probes(probe):
    result = run_probe(probe, algo="dt")
    assert result["passed"], result["detail"]


def test_the_command_passes_and_prints_the_table(capsys):
    main(["probe", "--only", "acting", "credit"])
    out = capsys.readouterr().out
    assert "2 of 2 probes passed" in out and "credit assignment over a delay" in out


def test_no_bootstrap_at_truncation_is_named(monkeypatch, capsys):
    advantages = ppo.advantages

    def without_bootstrap(rollout, gamma, lam):
        rollout.bootstraps[:] = 0.0  # a cut-off episode treated as ended
        advantages(rollout, gamma, lam)
    monkeypatch.setattr(ppo, "advantages", without_bootstrap)
    with pytest.raises(SystemExit) as exit_:
        main(["probe", "--only", "acting", "truncation"])
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert "pass  acting" in out and "FAIL  truncation" in out
    assert "truncation failed" in out and "not bootstrapped at truncation" in out
    assert "1 of 2 probes passed" in out


def test_a_flipped_advantage_is_named(monkeypatch):
    advantages = ppo.advantages

    def flipped(rollout, gamma, lam):
        advantages(rollout, gamma, lam)
        np.negative(rollout.host_advantages, out=rollout.host_advantages)  # the same memory as .advantages on CPU
    monkeypatch.setattr(ppo, "advantages", flipped)
    [result] = run_probes(names=["acting"], print_fn=lambda line: None)
    assert not result["passed"] and "wrong sign" in result["hint"]


def test_bad_input():
    with pytest.raises(ValueError, match="unknown probe.*nope; the probes are: acting, value"):
        run_probes(names=["nope"])
    with pytest.raises(ValueError, match="unknown policy 'gru'; choose from mlp, lstm"):
        run_probes("gru")
    with pytest.raises(SystemExit):
        main(["probe", "--policy", "gru"])
    with pytest.raises(ValueError, match="unknown algo 'sac'; choose from ppo, dt"):
        run_probes(algo="sac")
    with pytest.raises(ValueError, match="a policy is for --algo ppo"):
        run_probes("lstm", algo="dt")
    with pytest.raises(ValueError, match="none of value is a probe for --algo dt"):
        run_probes(names=["value"], algo="dt")
