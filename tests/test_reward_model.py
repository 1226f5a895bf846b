"""The reward model: it learns a planted preference, its loss is the
Bradley-Terry formula, it reads the end of long texts, its checkpoint
round-trips, and `puffer train text --algo rm` / `puffer sample
--reward-model` work from the command line."""
import json
import math
import re

import numpy as np
import pytest
import torch

from puffer.cli import main
from puffer.config import load_config
from puffer.tokenizer import CharTokenizer, load_corpus_tokens
from puffer.trainer.checkpoint import load_checkpoint
from puffer.trainer.reward_model import (RewardModel, encode, initial_model, load_reward_model,
                                         preference_loss, score, train_reward_model, win_probability)
from tiny_gpt import TINY

FAST_RM = {"reward_model.learning_rate": 3e-3, "reward_model.epochs": 4, "reward_model.batch_size": 16,
           "reward_model.holdout": 0.2}
MARKER = "$"  # rare in the corpus: the planted taste is "a continuation with a $ wins"


def write_planted_preferences(path, pairs=300, seed=0):
    """Pairs of corpus snippets of which the one with MARKER in it is always
    chosen, on a random side; plus a skipped record and a torn last line,
    which must both be left out."""
    tokenizer, train, _ = load_corpus_tokens()
    text = tokenizer.decode(train[:200_000]).replace(MARKER, "s")
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for pair in range(pairs):
            s = rng.integers(0, len(text) - 20, 3)
            prompt, plain, marked = text[s[0]:s[0] + 8], text[s[1]:s[1] + 10], list(text[s[2]:s[2] + 10])
            marked[rng.integers(0, 10)] = MARKER
            marked_first = rng.random() < 0.5
            first, second = ("".join(marked), plain) if marked_first else (plain, "".join(marked))
            f.write(json.dumps({"pair": pair, "seed": 0, "prompt": prompt, "first": first, "second": second,
                                "model": "test", "choice": "first" if marked_first else "second",
                                "labeller": "judge:planted"}) + "\n")
        f.write(json.dumps({"pair": pairs, "seed": 0, "prompt": "A", "first": "b", "second": "c", "model": "test",
                            "choice": "skip", "labeller": "judge:planted"}) + "\n")
        f.write('{"pair": 999, "prompt": "A", "fir')  # torn: no trailing newline
    return path


@pytest.fixture(scope="module")
def prefs(tmp_path_factory):
    return write_planted_preferences(tmp_path_factory.mktemp("prefs") / "prefs.jsonl")


@pytest.fixture(scope="module")
def trained(prefs, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("rm")
    lines = []
    summary = train_reward_model(load_config("text", {**TINY, **FAST_RM}), prefs, run_dir, print_fn=lines.append)
    return summary, run_dir, lines


@pytest.fixture(scope="module")
def pretrained(tiny_gpt):
    return str(tiny_gpt / "checkpoint.pt")


def test_the_reward_model_learns_a_planted_preference(trained):
    summary, run_dir, lines = trained
    assert summary["accuracy"] > 0.95
    assert summary["holdout_comparisons"] == 60 and summary["train_comparisons"] == 240  # split by pair
    metrics = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    kept = min(metrics, key=lambda m: m["holdout_loss"])  # early stopping on the held-out loss
    assert summary["epoch"] == kept["epoch"] and summary["accuracy"] == kept["holdout_accuracy"]
    assert load_checkpoint(run_dir)["epoch"] == kept["epoch"]
    assert sum("accuracy" in line for line in lines) == 4


def test_bradley_terry_loss_matches_the_formula_ties_included():
    r_first, r_second = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.5, 1.0, -0.25])
    target = torch.tensor([1.0, 0.0, 0.5])  # first chosen, second chosen, a tie

    def log_sigmoid(x):
        return -math.log1p(math.exp(-x))
    expected = [-log_sigmoid(2.0 - 0.5), -log_sigmoid(1.0 - -1.0),
                -(log_sigmoid(0.75) + log_sigmoid(-0.75)) / 2]
    loss = preference_loss(r_first, r_second, target)
    assert loss.item() == pytest.approx(sum(expected) / 3, rel=1e-6)


def test_long_texts_keep_their_last_block_size_tokens():
    tokenizer = CharTokenizer.from_corpus()
    model, _ = initial_model(load_config("text", TINY), None, tokenizer.vocab_size)
    long_text = "ROMEO: " * 10 + "the end of it"
    idx, lengths = encode(tokenizer, [long_text, "short"], model.gpt.block_size)
    assert idx.shape == (2, 16) and lengths.tolist() == [16, 5]
    assert tokenizer.decode(idx[0].numpy()) == long_text[-16:]
    # Only the last 16 characters matter to the reward; the start can be anything.
    # (Rows of one batch may differ in the last bits: the matmul kernels tile by row.)
    torch.testing.assert_close(*score(model, tokenizer, [long_text, "x" * 30 + long_text[-16:]]))
    assert not torch.equal(*score(model, tokenizer, [long_text, long_text + "!"]))


def test_checkpoint_round_trips_and_win_probability_is_a_probability(trained):
    summary, run_dir, _ = trained
    model, tokenizer = load_reward_model(summary["checkpoint"])
    again, _ = load_reward_model(run_dir)
    texts = ["To be, or not", "To be, or no$"]
    assert torch.equal(score(model, tokenizer, texts), score(again, tokenizer, texts))
    assert isinstance(model, RewardModel)
    p = win_probability(model, tokenizer, "To be, ", "or no$", "or not")
    assert 0.5 < p < 1  # the planted taste
    assert p + win_probability(model, tokenizer, "To be, ", "or not", "or no$") == pytest.approx(1.0, abs=1e-6)


def test_cli_trains_from_a_pretrained_model_and_prints_the_accuracy(prefs, pretrained, tmp_path, capsys):
    run_dir = tmp_path / "rm"
    main(["train", "text", "--algo", "rm", "--prefs", str(prefs), "--init", pretrained, "--run-dir", str(run_dir),
          "--reward_model.epochs", "2", "--reward_model.learning_rate", "3e-3"])
    out = capsys.readouterr().out
    assert re.search(r"held-out accuracy \d+\.\d%", out) and f"checkpoint: {run_dir / 'checkpoint.pt'}" in out
    assert (run_dir / "checkpoint.pt").is_file()
    saved = load_checkpoint(run_dir)
    assert saved["kind"] == "reward_model" and saved["init"] == pretrained and 0 <= saved["accuracy"] <= 1


def record(pair, choice, first="b"):
    return json.dumps({"pair": pair, "seed": 0, "prompt": "a", "first": first, "second": "c", "model": "m",
                       "choice": choice, "labeller": "human"}) + "\n"


@pytest.mark.parametrize("setup, argv, message", [
    (None, ["--prefs", "{tmp}/missing.jsonl"], "no preference file at"),
    (record(0, "skip"), ["--prefs", "{tmp}/prefs.jsonl"], "holds no usable comparisons"),
    (record(0, "first"), ["--prefs", "{tmp}/prefs.jsonl"], "too few comparisons for a held-out split"),
    (record(0, "first", first="\u00e9") + record(1, "first"), ["--prefs", "{tmp}/prefs.jsonl", "--reward_model.holdout",
                                                             "0.5"], "pair 0: character 'é' is not in the vocabulary"),
    (record(0, "first"), ["--prefs", "{tmp}/prefs.jsonl", "--algo", "ppo"], "--prefs is for --algo rm only"),
    (None, ["--algo", "rm"], "--algo rm trains from --prefs FILE"),
    (None, ["--prefs", "{tmp}/prefs.jsonl", "--reward_model.nope", "1"], "unknown config key 'reward_model.nope'"),
])
def test_cli_bad_input_is_a_clear_error(setup, argv, message, tmp_path):
    if setup is not None:
        (tmp_path / "prefs.jsonl").write_text(setup)
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    algo = [] if "--algo" in argv else ["--algo", "rm"]
    tiny = [f"--{key}={value}" for key, value in TINY.items()]
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(["train", "text", *algo, *argv, "--run-dir", str(tmp_path / "run"), *tiny])


def test_sample_prints_the_probability_of_beating_the_baseline(trained, pretrained, capsys):
    summary, _, _ = trained
    main(["sample", "--checkpoint", pretrained, "--reward-model", summary["checkpoint"], "--samples", "3",
          "--prompt", "ROMEO:", "--length", "12", "--seed", "0"])
    out = capsys.readouterr().out
    probabilities = [float(p) for p in re.findall(r"P\(beats the baseline's sample\) = (\S+)", out)]
    assert len(probabilities) == 3 and all(0 <= p <= 1 for p in probabilities)
    assert out.count("ROMEO:") == 3


def test_train_usage_lists_the_reward_model_keys(capsys):
    main(["train"])  # no ENV: the usage and the default config keys
    out = capsys.readouterr().out
    assert "--reward_model.holdout 0.1" in out and "--prefs" in out
