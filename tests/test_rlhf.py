"""PPO against a reward model: the one-pass log-probs and values of learning
are the cached rollout's, GAE and the KL controller follow their formulas, a
short run against a planted reward model raises its score with the KL
bounded, a resumed run is the uninterrupted one, and `puffer train text
--reward-model` / `puffer eval text --judge --against` work from the command
line."""
import re

import numpy as np
import pytest
import torch

from puffer.cli import main
from puffer.config import load_config
from puffer.judges import fluency
from puffer.tokenizer import CharTokenizer, load_corpus_tokens
from puffer.trainer.checkpoint import load_checkpoint, save_checkpoint
from puffer.trainer.pretrain import build_model, load_language_model
from puffer.trainer.reward_model import RewardModel
from puffer.trainer.rlhf import (adapt_kl_coef, collect, gae, policy_from_language_model, sample_prompts,
                                 sequence_outputs, train_rlhf, win_rate)
from tiny_gpt import TINY

# Episodes of 8 + 8 characters fit the tiny GPT's block of 16.
SHORT = {"rlhf.prompt_len": 8, "rlhf.gen_len": 8, "rlhf.batch_size": 32, "rlhf.minibatch_size": 8,
         "train.checkpoint_interval": 2}
MARKER = "e"


class MarkerReward(RewardModel):
    """A reward model whose taste is known: the number of MARKER characters
    in the last 8 of a text."""

    def __init__(self, tokenizer):
        super().__init__(build_model(load_config("text", TINY), tokenizer.vocab_size))
        self.marker = int(tokenizer.encode(MARKER)[0])

    def forward(self, idx, lengths):
        return (idx[:, -8:] == self.marker).float().sum(1)


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.from_corpus()


def test_one_pass_gives_the_cached_rollouts_logprobs_and_values(tiny_gpt):
    policy = policy_from_language_model(load_language_model(tiny_gpt)[0]).eval()
    torch.nn.init.normal_(policy.critic.weight)  # a value head that reads the hidden state
    _, train_tokens, _ = load_corpus_tokens()
    prompts = sample_prompts(train_tokens, 6, 8, np.random.default_rng(0))
    texts, logprobs, values = collect(policy, prompts, 8)
    assert torch.equal(texts[:, :8], prompts)
    with torch.no_grad():
        logits, one_pass_values = sequence_outputs(policy, texts, 8)
        one_pass = policy.head.log_prob_entropy(logits, texts[:, 8:])[0]
        # Step by step, each prefix read whole (no cache): the per-step log-prob of each written character.
        per_step = torch.stack([torch.log_softmax(policy.gpt.lm_head(policy.gpt.hidden(texts[:, :8 + t])[:, -1]), -1)
                                .gather(-1, texts[:, 8 + t, None]).squeeze(-1) for t in range(8)], 1)
    torch.testing.assert_close(one_pass, logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(per_step, logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(one_pass_values, values, atol=1e-5, rtol=1e-5)


def test_gae_with_lambda_one_is_the_return_to_go_less_the_value():
    rewards, values = torch.randn(4, 6), torch.randn(4, 6)
    advantages, returns = gae(rewards, values, gae_lambda=1.0)
    to_go = rewards.flip(1).cumsum(1).flip(1)
    torch.testing.assert_close(returns, to_go)
    torch.testing.assert_close(advantages, to_go - values)
    advantages, _ = gae(rewards, values, gae_lambda=0.0)  # one-step TD errors, nothing after the last
    torch.testing.assert_close(advantages[:, -1], rewards[:, -1] - values[:, -1])
    torch.testing.assert_close(advantages[:, :-1], rewards[:, :-1] + values[:, 1:] - values[:, :-1])


def test_the_kl_coefficient_moves_towards_its_target():
    assert adapt_kl_coef(0.1, 0.3, 0.1, 64, 10_000) == pytest.approx(0.1 * (1 + 0.2 * 64 / 10_000))
    assert adapt_kl_coef(0.1, 0.09, 0.1, 64, 10_000) == pytest.approx(0.1 * (1 - 0.1 * 64 / 10_000))
    assert adapt_kl_coef(0.1, 0.01, 0.1, 64, 10_000) == pytest.approx(0.1 * (1 - 0.2 * 64 / 10_000))
    assert adapt_kl_coef(0.1, 5.0, 0.0, 64, 10_000) == 0.1  # target 0: fixed


def run(tiny_gpt, tokenizer, run_dir, overrides, resume=None):
    config = load_config("text", {**SHORT, **overrides})
    return train_rlhf(config, run_dir, tiny_gpt, MarkerReward(tokenizer), tokenizer, resume=resume, live=False)


def test_ppo_raises_a_planted_reward_models_score_with_the_kl_bounded(tiny_gpt, tokenizer, tmp_path, capsys):
    summary = run(tiny_gpt, tokenizer, tmp_path, {"rlhf.updates": 30, "rlhf.learning_rate": 3e-3,
                                                 "rlhf.kl_coef": 0.2, "rlhf.target_kl": 0.3, "rlhf.kl_horizon": 300})
    history = summary["history"]
    scores, kl = [h["rm_score"] for h in history], [h["kl"] for h in history]
    # Markers in 8 written characters: about 0.4 from the tiny model (the first update's rollout), then
    # several times that; meanwhile the controller, the KL past its target, raised kl_coef and held the KL.
    assert np.mean(scores[-10:]) > scores[0] + 1.0, scores
    assert max(kl) < 1.5, kl  # with kl_coef 0.05 fixed it runs to 2.8 nats and the texts to all "e"
    assert history[-1]["kl_coef"] > 0.2
    assert {"judge_score", "policy_loss", "approx_kl", "sps"} <= history[-1].keys()
    assert "rm_score=" in capsys.readouterr().out  # the dashboard's plain lines


def test_a_resumed_run_is_the_uninterrupted_run(tiny_gpt, tokenizer, tmp_path):
    straight = run(tiny_gpt, tokenizer, tmp_path / "straight", {"rlhf.updates": 4})
    run(tiny_gpt, tokenizer, tmp_path / "cut", {"rlhf.updates": 2})
    saved = load_checkpoint(tmp_path / "cut")
    resumed = run(tiny_gpt, tokenizer, tmp_path / "cut", {"rlhf.updates": 4}, resume=saved)
    assert saved["update"] == 2 and saved["kind"] == "rlhf"
    assert [h["update"] for h in resumed["history"]] == [3, 4]
    for a, b in zip(straight["history"][2:], resumed["history"]):
        assert a["rm_score"] == b["rm_score"] and a["kl"] == b["kl"]
    final, other = load_checkpoint(tmp_path / "straight")["policy"], load_checkpoint(tmp_path / "cut")["policy"]
    assert all(torch.equal(final[key], other[key]) for key in final)


def test_episodes_must_fit_in_the_block_and_the_judge_must_exist(tiny_gpt, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="must fit in the GPT's block of 16 characters, got 8 \\+ 9"):
        run(tiny_gpt, tokenizer, tmp_path, {"rlhf.gen_len": 9})
    with pytest.raises(ValueError, match="unknown judge 'poetry': the judges are fluency, verse"):
        run(tiny_gpt, tokenizer, tmp_path, {"rlhf.judge": "poetry"})


def test_win_rate_of_a_model_against_itself_is_a_coin_toss(tiny_gpt):
    model, _ = load_language_model(tiny_gpt)
    _, _, held_out = load_corpus_tokens()
    result = win_rate(model, model, fluency, held_out, 200, 8, 8, seed=0)
    assert result["wins"] + result["ties"] + result["losses"] == 200
    assert result["low"] < 0.5 < result["high"] and result["high"] - result["low"] < 0.2
    assert abs(result["kl"]) < 1e-6  # the same model: log-ratio 0 on every character
    prompt, text, other = result["samples"][0]
    assert len(prompt) == 8 and len(text) == len(other) == 8
    with pytest.raises(ValueError, match="must fit in both models' blocks \\(16, 16\\), got 0 \\+ 8"):
        win_rate(model, model, fluency, held_out, 20, 0, 8, seed=0)


def fresh_reward_model(path, tokenizer):
    config = load_config("text", TINY)
    save_checkpoint(path, {"kind": "reward_model", "config": config, "vocab": tokenizer.chars,
                           "model": RewardModel(build_model(config, tokenizer.vocab_size)).state_dict()})
    return str(path)


def test_cli_fine_tunes_resumes_and_evaluates(tiny_gpt, tokenizer, tmp_path, capsys):
    rm = fresh_reward_model(tmp_path / "rm.pt", tokenizer)
    run_dir = tmp_path / "rlhf"
    short = [f"--{key}={value}" for key, value in SHORT.items()]
    main(["train", "text", "--init", str(tiny_gpt), "--reward-model", rm, "--run-dir", str(run_dir),
          "--rlhf.updates", "2", *short])
    out = capsys.readouterr().out
    assert "samples after training" in out and "KL" in out
    main(["train", "text", "--resume", str(run_dir), "--rlhf.updates", "3"])  # the reward model from the run
    assert load_checkpoint(run_dir)["update"] == 3
    capsys.readouterr()
    main(["eval", "text", "--checkpoint", str(run_dir), "--judge", "fluency", "--against", str(tiny_gpt),
          "--prompts", "20", "--prompt-len", "8", "--gen-len", "8"])
    out = capsys.readouterr().out
    match = re.search(r"win rate under the fluency judge against .*: ([\d.]+)% \(95% CI", out)
    assert match and 0 <= float(match.group(1)) <= 100 and "--- prompt ---" in out


@pytest.mark.parametrize("argv, message", [
    (["train", "text", "--reward-model", "rm.pt"], "give it with --init"),
    (["train", "cartpole", "--init", "x", "--reward-model", "rm.pt"], "is for PPO on the text env"),
    (["eval", "text", "--checkpoint", "x", "--judge", "fluency"], "--judge and --against go together"),
    (["eval", "cartpole", "--checkpoint", "x", "--judge", "fluency", "--against", "y"], "compares text models"),
])
def test_cli_errors(argv, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(argv)
