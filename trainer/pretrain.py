"""Next-character pretraining of the GPT on the text env's corpus, nanoGPT
style: random windows of the training part, AdamW with warm-up and cosine
decay, the validation loss on the held-out tail (the same tail the text env
keeps out of its n-gram model), a sample printed at each evaluation, and an
atomic checkpoint whenever the validation loss improves."""
import math
import time
from pathlib import Path

import numpy as np
import torch

from puffer.config import as_namespace
from puffer.models.gpt import GPT
from puffer.tokenizer import load_corpus_tokens
from puffer.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint


def build_model(config, vocab_size):
    policy = config["policy"]
    return GPT(vocab_size, config["env"]["context"], n_layer=policy["num_layers"], n_head=policy["num_heads"],
               n_embd=policy["hidden_size"], dropout=config["pretrain"]["dropout"])


def with_architecture_of(config, saved):
    """`config` with the [policy] and [env] sections that rebuild (build_model)
    the GPT of the checkpoint `saved`."""
    return {**config, "policy": saved["config"]["policy"], "env": saved["config"]["env"]}


def get_batch(tokens, batch_size, block_size, rng):
    """Random windows: inputs [B, T] and the next characters as targets."""
    starts = rng.integers(0, len(tokens) - block_size - 1, batch_size)
    windows = np.stack([tokens[s:s + block_size + 1] for s in starts]).astype(np.int64)
    windows = torch.from_numpy(windows)
    return windows[:, :-1], windows[:, 1:]


def learning_rate(args, iteration, elapsed):
    """Linear warm-up, then cosine decay to min_learning_rate when the first
    budget runs out, max_iters or max_seconds: on a machine too slow for
    max_iters the rate has decayed all the same when time is up."""
    if iteration < args.warmup_iters:
        return args.learning_rate * (iteration + 1) / args.warmup_iters
    progress = min(1.0, max((iteration - args.warmup_iters) / max(1, args.max_iters - args.warmup_iters),
                            elapsed / args.max_seconds))
    return args.min_learning_rate + 0.5 * (1 + math.cos(math.pi * progress)) * (args.learning_rate - args.min_learning_rate)


@torch.no_grad()
def estimate_loss(model, tokens, args, rng):
    model.eval()
    losses = [model(*get_batch(tokens, args.batch_size, model.block_size, rng))[1].item()
              for _ in range(args.eval_iters)]
    model.train()
    return float(np.mean(losses))


def make_optimizer(model, args):
    return torch.optim.AdamW(model.parameters(), lr=args.learning_rate, betas=(0.9, 0.99),
                             weight_decay=args.weight_decay)


def train_step(model, optimizer, batch):
    """One gradient step of next-character prediction on (inputs, targets)."""
    _, loss = model(*batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def pretrain(config, run_dir, print_fn=print):
    """Trains until max_iters or max_seconds; returns a summary with the best
    validation loss and the checkpoint path."""
    args = as_namespace(config).pretrain
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(config["train"]["torch_threads"])
    tokenizer, train_tokens, val_tokens = load_corpus_tokens()
    model = build_model(config, tokenizer.vocab_size)
    optimizer = make_optimizer(model, args)
    print_fn(f"GPT of {model.num_parameters():,} parameters; {len(train_tokens):,} training and "
             f"{len(val_tokens):,} validation characters")
    path = run_dir / CHECKPOINT_NAME
    best, history = float("inf"), []
    start = time.perf_counter()
    for iteration in range(args.max_iters + 1):
        elapsed = time.perf_counter() - start
        last = iteration == args.max_iters or elapsed >= args.max_seconds
        if iteration % args.eval_interval == 0 or last:
            val_loss = estimate_loss(model, val_tokens, args, rng)
            train_loss = estimate_loss(model, train_tokens, args, rng)
            tokens_per_second = iteration * args.batch_size * model.block_size / max(elapsed, 1e-9)
            history.append({"iter": iteration, "seconds": elapsed, "train_loss": train_loss, "val_loss": val_loss,
                             "tokens_per_second": tokens_per_second})
            print_fn(f"iter {iteration}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, {elapsed:.0f} s, "
                     f"{tokens_per_second:,.0f} tokens/s")
            print_fn("  sample: " + repr(sample(model, tokenizer, "\n", args.sample_len)))
            if val_loss < best:
                best = val_loss
                save_checkpoint(path, {"kind": "gpt", "config": config, "gpt": model.state_dict(),
                                       "vocab": tokenizer.chars, "iter": iteration, "val_loss": val_loss})
        if last:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, iteration, elapsed)
        train_step(model, optimizer, get_batch(train_tokens, args.batch_size, model.block_size, rng))
    return {"val_loss": best, "parameters": model.num_parameters(), "checkpoint": str(path),
            "seconds": time.perf_counter() - start, "tokens_per_second": tokens_per_second, "history": history}


def sample(model, tokenizer, prompt, length, temperature=1.0, top_k=None):
    """`length` characters generated after `prompt`."""
    was_training = model.training
    model.eval()
    idx = torch.from_numpy(tokenizer.encode(prompt).astype(np.int64))[None]
    out = model.generate(idx, length, temperature=temperature, top_k=top_k)
    model.train(was_training)
    return tokenizer.decode(out[0, idx.shape[1]:].numpy())


def load_language_model(path):
    """The GPT and tokenizer of a pretrain checkpoint, or of the policy of a
    PPO checkpoint of a text env."""
    return language_model(load_checkpoint(path), path)


def language_model(saved, path):
    """load_language_model of the checkpoint `saved`, already read from `path`."""
    from puffer.tokenizer import CharTokenizer
    config = saved["config"]
    if "gpt" in saved:
        weights = saved["gpt"]
    elif config["policy"]["type"] == "gpt":
        weights = {k[len("gpt."):]: v for k, v in saved["policy"].items() if k.startswith("gpt.")}
    else:
        raise ValueError(f"{path} holds no GPT language model")
    tokenizer = CharTokenizer.from_corpus()
    model = build_model(config, tokenizer.vocab_size)
    model.load_state_dict(weights)
    return model.eval(), tokenizer
