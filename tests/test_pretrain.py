"""Pretraining the GPT on the corpus, sampling, and fine-tuning it with PPO."""
import pytest

from puffer.config import load_config
from puffer.trainer.pretrain import load_language_model, pretrain, sample

TINY = {"policy.type": "gpt", "policy.hidden_size": 32, "policy.num_layers": 1, "policy.num_heads": 2,
        "env.context": 16, "env.prompt_len": 16, "pretrain.batch_size": 32, "pretrain.max_iters": 60,
        "pretrain.eval_interval": 30, "pretrain.eval_iters": 4, "pretrain.warmup_iters": 5,
        "pretrain.learning_rate": 3e-3, "pretrain.sample_len": 20}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pretrain")
    lines = []
    summary = pretrain(load_config("text", TINY), run_dir, print_fn=lines.append)
    return summary, lines


def test_short_pretraining_lowers_the_loss(pretrained):
    summary, lines = pretrained
    history = summary["history"]
    assert [h["iter"] for h in history] == [0, 30, 60]
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 0.5
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.5
    assert sum("sample:" in line for line in lines) == 3  # a sample at each evaluation


def test_checkpoint_samples_text_of_the_corpus_alphabet(pretrained):
    summary, _ = pretrained
    model, tokenizer = load_language_model(summary["checkpoint"])
    text = sample(model, tokenizer, "ROMEO:", 50, temperature=0.8, top_k=10)
    assert len(text) == 50 and set(text) <= set(tokenizer.chars)


def test_ppo_fine_tuning_starts_from_the_pretrained_model(pretrained, tmp_path):
    import json

    import torch

    from puffer.trainer.checkpoint import load_checkpoint
    from puffer.trainer.ppo import train
    summary, _ = pretrained
    config = load_config("text", {**{k: v for k, v in TINY.items() if not k.startswith("pretrain.")},
                                  "vec.num_envs": 16, "train.horizon": 16, "train.total_steps": 512,
                                  "train.kl_coef": 0.1, "env.gen_len": 8})
    train("text", config, tmp_path, init=summary["checkpoint"], live=False)
    metrics = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert len(metrics) == 2 and all("kl_to_reference" in m for m in metrics)
    # At the first update the policy is the pretrained model itself: no divergence yet.
    assert abs(metrics[0]["kl_to_reference"]) < 1e-5
    pretrained_gpt = load_checkpoint(summary["checkpoint"])["gpt"]
    tuned = load_checkpoint(tmp_path)["policy"]
    assert not torch.equal(tuned["gpt.blocks.0.attn.qkv.weight"], pretrained_gpt["blocks.0.attn.qkv.weight"])
    model, tokenizer = load_language_model(tmp_path)  # samples from the fine-tuned policy too
    assert len(sample(model, tokenizer, "A", 10)) == 10
