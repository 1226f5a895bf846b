"""A reward model of human preferences, RLHF in miniature: the GPT trunk with
a scalar head read at the last token, trained on labelled pairs of
continuations with the Bradley-Terry loss, so that sigmoid(r_a - r_b) is the
probability that a labeller prefers a over b. Pairs are split by pair id into
training and held-out parts; the held-out preference accuracy says whether
it learned the labellers' taste or only memorised their answers."""
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from puffer import preferences
from puffer.config import as_namespace
from puffer.tokenizer import CharTokenizer
from puffer.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from puffer.trainer.pretrain import build_model, language_model, with_architecture_of

# A comparison's choice as the probability that "first" is preferred.
TARGETS = {"first": 1.0, "second": 0.0, "tie": 0.5}


class RewardModel(nn.Module):
    """A GPT trunk and a Linear(n_embd, 1) head on the last token's hidden
    state: with causal attention that token is the only one that has seen the
    whole text."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt
        self.head = nn.Linear(gpt.token_embedding.embedding_dim, 1)
        nn.init.normal_(self.head.weight, 0.0, 0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, idx, lengths):
        """Right-padded token ids [B, T] and each row's length [B] -> rewards [B]."""
        last = self.gpt.hidden(idx)[torch.arange(len(idx), device=idx.device), lengths - 1]
        return self.head(last).squeeze(-1)


def encode(tokenizer, texts, block_size):
    """Texts -> right-padded ids [B, T] and lengths [B], each text cut to its
    last block_size tokens so that the end of a continuation is always seen."""
    rows = [tokenizer.encode(text)[-block_size:] for text in texts]
    if any(len(row) == 0 for row in rows):
        raise ValueError("cannot score an empty text")
    idx = np.zeros((len(rows), max(len(row) for row in rows)), np.int64)
    for i, row in enumerate(rows):
        idx[i, :len(row)] = row
    return torch.from_numpy(idx), torch.tensor([len(row) for row in rows])


@torch.no_grad()
def score(model, tokenizer, texts):
    """The rewards [B] of whole texts (prompt + continuation)."""
    was_training = model.training
    model.eval()
    rewards = model(*encode(tokenizer, texts, model.gpt.block_size))
    model.train(was_training)
    return rewards


def win_probability(model, tokenizer, prompt, text_a, text_b):
    """sigmoid(r_a - r_b): the probability that continuation a of `prompt` beats b."""
    r_a, r_b = score(model, tokenizer, [prompt + text_a, prompt + text_b])
    return torch.sigmoid(r_a - r_b).item()


def preference_loss(r_first, r_second, target):
    """The Bradley-Terry loss: with d = r_first - r_second, -log sigmoid(d)
    when first is preferred (target 1), -log sigmoid(-d) when second is (0),
    and the mean of the two for a tie (0.5): a cross-entropy on the logit d."""
    return F.binary_cross_entropy_with_logits(r_first - r_second, target)


def encode_comparisons(comparisons, tokenizer, block_size):
    """(first ids, first lengths, second ids, second lengths, targets) of all
    comparisons; a character outside the vocabulary is an error naming its pair."""
    for c in comparisons:
        for text in (c["prompt"], c["first"], c["second"]):
            try:
                tokenizer.encode(text)
            except ValueError as error:
                raise ValueError(f"pair {c['pair']}: {error}") from None
    first = encode(tokenizer, [c["prompt"] + c["first"] for c in comparisons], block_size)
    second = encode(tokenizer, [c["prompt"] + c["second"] for c in comparisons], block_size)
    return (*first, *second, torch.tensor([TARGETS[c["choice"]] for c in comparisons]))


def split_by_pair(comparisons, holdout, seed):
    """Indices of the training and held-out comparisons: a seeded draw of
    whole pairs, so that no pair (labelled twice, say) is on both sides."""
    pairs = sorted({c["pair"] for c in comparisons})
    held_count = round(holdout * len(pairs))
    if held_count == 0 or held_count == len(pairs):
        raise ValueError(f"too few comparisons for a held-out split: {len(pairs)} pairs at "
                         f"reward_model.holdout {holdout} leave {'none' if held_count == 0 else 'all'} held out")
    held = set(np.random.default_rng(seed).permutation(pairs)[:held_count].tolist())
    is_held = np.array([c["pair"] in held for c in comparisons])
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def initial_model(config, init, vocab_size):
    """The reward model to train and the config that rebuilds its trunk: the
    --init language model's architecture and weights, or a fresh [policy] GPT."""
    if init is None:
        return RewardModel(build_model(config, vocab_size)), config
    saved = load_checkpoint(init)
    gpt, _ = language_model(saved, init)
    return RewardModel(gpt), with_architecture_of(config, saved)


@torch.no_grad()
def evaluate(model, data, indices, batch_size):
    """(loss, accuracy) on `indices`; the accuracy counts the decided
    comparisons (ties excluded) whose preferred text scores higher (None if none)."""
    model.eval()
    losses, correct, decided = [], 0, 0
    for batch in np.array_split(indices, max(1, len(indices) // batch_size)):
        r_first, r_second, target = rewards(model, data, batch)
        losses.append(preference_loss(r_first, r_second, target).item() * len(batch))
        is_decided = target != 0.5
        correct += ((r_first > r_second) == (target == 1.0))[is_decided].sum().item()
        decided += is_decided.sum().item()
    model.train()
    return sum(losses) / len(indices), correct / decided if decided else None


def rewards(model, data, batch):
    """The rewards of both sides of the comparisons `batch`, in one forward pass, and their targets."""
    first_idx, first_len, second_idx, second_len, targets = data
    width = max(first_idx.shape[1], second_idx.shape[1])
    idx = torch.cat([F.pad(first_idx[batch], (0, width - first_idx.shape[1])),
                     F.pad(second_idx[batch], (0, width - second_idx.shape[1]))])
    r = model(idx, torch.cat([first_len[batch], second_len[batch]]))
    return r[:len(batch)], r[len(batch):], targets[batch]


def train_reward_model(config, prefs, run_dir, init=None, print_fn=print):
    """Trains on the preference file `prefs`, writing config.json,
    metrics.jsonl and checkpoint.pt (the epoch of the lowest held-out loss)
    into `run_dir`; returns a summary with that epoch, its held-out accuracy
    and the checkpoint path."""
    args = as_namespace(config).reward_model
    if args.epochs < 1 or args.batch_size < 1 or not 0 < args.holdout < 1:
        raise ValueError("reward_model.epochs and reward_model.batch_size must be at least 1, "
                         f"reward_model.holdout in (0, 1); got {args.epochs}, {args.batch_size}, {args.holdout}")
    if not Path(prefs).is_file():
        raise FileNotFoundError(f"no preference file at {prefs}")
    comparisons = preferences.comparisons(preferences.read_preferences(prefs))
    if not comparisons:
        raise ValueError(f"{prefs} holds no usable comparisons (every record is skipped, or there are none)")
    train_idx, held_idx = split_by_pair(comparisons, args.holdout, args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(config["train"]["torch_threads"])
    tokenizer = CharTokenizer.from_corpus()
    model, config = initial_model(config, init, tokenizer.vocab_size)
    data = encode_comparisons(comparisons, tokenizer, model.gpt.block_size)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"algo": "rm", "prefs": str(prefs), "init": init, **config},
                                                    indent=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    print_fn(f"reward model of {sum(p.numel() for p in model.parameters()):,} parameters; "
             f"{len(train_idx)} training and {len(held_idx)} held-out comparisons")
    rng = np.random.default_rng(args.seed)
    # Early stopping: the checkpoint holds the epoch of the lowest held-out
    # loss, since a few thousand pairs are memorised within a few epochs.
    path, start, best = run_dir / CHECKPOINT_NAME, time.perf_counter(), None
    with open(run_dir / "metrics.jsonl", "a") as metrics:
        for epoch in range(1, args.epochs + 1):
            train_losses = []
            for batch in np.array_split(rng.permutation(train_idx), max(1, len(train_idx) // args.batch_size)):
                loss = preference_loss(*rewards(model, data, batch))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                train_losses.append(loss.item())
            held_loss, accuracy = evaluate(model, data, held_idx, args.batch_size)
            line = {"epoch": epoch, "seconds": time.perf_counter() - start, "train_loss": float(np.mean(train_losses)),
                    "holdout_loss": held_loss, "holdout_accuracy": accuracy}
            metrics.write(json.dumps(line) + "\n")
            metrics.flush()
            print_fn(f"epoch {epoch}: train loss {line['train_loss']:.4f}, held-out loss {held_loss:.4f}, "
                     f"accuracy {format_accuracy(accuracy)}")
            if best is None or held_loss < best["holdout_loss"]:
                best = line
                save_checkpoint(path, {"kind": "reward_model", "config": config, "model": model.state_dict(),
                                       "vocab": tokenizer.chars, "accuracy": accuracy, "init": init, "epoch": epoch})
    return {"accuracy": best["holdout_accuracy"], "epoch": best["epoch"], "epochs": args.epochs,
            "checkpoint": str(path), "seconds": time.perf_counter() - start,
            "train_comparisons": len(train_idx), "holdout_comparisons": len(held_idx)}


def format_accuracy(accuracy):
    return "n/a (no decided held-out pairs)" if accuracy is None else f"{accuracy:.1%}"


def load_reward_model(path):
    """The RewardModel (in eval mode) and tokenizer of a reward-model checkpoint or run directory."""
    saved = load_checkpoint(path)
    if saved.get("kind") != "reward_model":
        raise ValueError(f"{path} holds no reward model (it is not from puffer train text --algo rm)")
    tokenizer = CharTokenizer(saved["vocab"])
    model = RewardModel(build_model(saved["config"], tokenizer.vocab_size))
    model.load_state_dict(saved["model"])
    return model.eval(), tokenizer
