"""PPO against a reward model, RLHF in miniature: InstructGPT's step 4 as
TRL's PPO trainer does it, on the char GPT of `puffer pretrain text`.

An episode is a prompt of prompt_len characters of the corpus's training
head and gen_len characters the policy writes after it; prompt and text fit
in the GPT's block, so every position is absolute and a key/value cache is
exact. One update:
1. collect: the policy writes every episode's text, one cached forward step
   a character (KVCache), keeping each character's log-prob and value;
2. score: the reward model scores each whole text; the frozen reference
   (the --init model) reads each in one pass for its log-probs;
3. rewards: -kl_coef * (logp - ref_logp) for every character, plus the
   score, normalised by its running mean and deviation, on the last one;
4. advantages: GAE over each episode's characters (gamma 1: the score comes
   at the end, and an episode is 32 characters, not a lifetime);
5. update: PPO's clipped objectives over epochs of minibatches of episodes,
   one forward pass an episode giving every character's log-prob and value;
6. kl_coef adapts towards target_kl nats a character (Ziegler et al. 2019).
The dashboard shows the reward model's score beside the judge's (a score the
reward model only saw through noisy choices) and the KL, so that reward
hacking shows as a rising reward-model score over a flat judge's."""
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from puffer.config import as_namespace
from puffer.judges import get_judge
from puffer.models.gpt import GPTPolicy, KVCache
from puffer.tokenizer import load_corpus_tokens
from puffer.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_rng, rng_state, save_checkpoint
from puffer.trainer.dashboard import Dashboard
from puffer.trainer.device import seed_and_device
from puffer.trainer.pretrain import language_model, with_architecture_of

SECTIONS = {
    "progress": ["global_step", "update", "wall_time", "sps"],
    "reward": ["rm_score", "judge_score", "kl", "kl_coef"],
    "losses": ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"],
}


class RunningMoments:
    """The mean and standard deviation of every score seen so far (Chan et
    al.'s parallel update), to whiten the reward model's scores: its scale is
    arbitrary, a Bradley-Terry model only fixes differences."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values):
        n, mean = len(values), float(values.mean())
        delta, total = mean - self.mean, self.count + n
        self.m2 += float(((values - mean) ** 2).sum()) + delta ** 2 * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self):
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 1.0

    def state_dict(self):
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state):
        self.count, self.mean, self.m2 = state["count"], state["mean"], state["m2"]


def policy_from_language_model(gpt):
    """A GPTPolicy (the GPT and a value head) holding `gpt`'s weights."""
    policy = GPTPolicy(spaces.Box(0, gpt.vocab_size - 1, (gpt.block_size,), np.uint8),
                       spaces.Discrete(gpt.vocab_size), gpt.token_embedding.embedding_dim, len(gpt.blocks),
                       gpt.blocks[0].attn.n_head)
    policy.gpt.load_state_dict(gpt.state_dict())
    return policy


def sample_prompts(tokens, count, prompt_len, rng):
    """`count` prompts [count, prompt_len] at random offsets of `tokens`."""
    starts = rng.integers(0, len(tokens) - prompt_len + 1, count)
    return torch.from_numpy(np.stack([tokens[s:s + prompt_len] for s in starts]).astype(np.int64))


@torch.no_grad()
def collect(policy, prompts, gen_len):
    """Each prompt [B, P] continued by gen_len sampled characters, one cached
    step each: the texts [B, P + gen_len] and each written character's
    log-prob and value [B, gen_len]."""
    batch, prompt_len = prompts.shape
    texts = torch.empty(batch, prompt_len + gen_len, dtype=torch.long, device=prompts.device)
    texts[:, :prompt_len] = prompts
    logprobs, values = (torch.empty(batch, gen_len, device=prompts.device) for _ in range(2))
    cache = KVCache(policy.gpt, batch)
    hidden = policy.gpt.hidden(prompts, cache)[:, -1]
    for t in range(gen_len):
        characters, logprobs[:, t] = policy.head.sample(policy.gpt.lm_head(hidden))
        values[:, t] = policy.critic(hidden).squeeze(-1)
        texts[:, prompt_len + t] = characters
        if t + 1 < gen_len:
            hidden = policy.gpt.hidden(characters[:, None], cache)[:, -1]
    return texts, logprobs, values


def written_hidden(gpt, texts, prompt_len):
    """One forward pass over whole texts [B, P + G]: the hidden states [B, G,
    C] that predict each written character (position P - 1 + t predicts
    character t), as collect's cached steps saw them."""
    return gpt.hidden(texts[:, :-1])[:, prompt_len - 1:]


def sequence_outputs(policy, texts, prompt_len):
    """The logits [B, G, vocab] and values [B, G] at each written character, in one pass."""
    hidden = written_hidden(policy.gpt, texts, prompt_len)
    return policy.gpt.lm_head(hidden), policy.critic(hidden.detach()).squeeze(-1)


def character_logprobs(gpt, texts, prompt_len):
    """log P(each written character) [B, G] under the language model `gpt`, in one pass."""
    logits = gpt.lm_head(written_hidden(gpt, texts, prompt_len))
    return torch.log_softmax(logits, -1).gather(-1, texts[:, prompt_len:, None]).squeeze(-1)


def reward_scores(reward_model, texts):
    """The reward model's score [B] of whole texts (its last block_size characters)."""
    window = texts[:, -reward_model.gpt.block_size:]
    return reward_model(window, torch.full((len(texts),), window.shape[1], device=texts.device))


def kl_rewards(logprobs, ref_logprobs, scores, kl_coef):
    """Each character's reward [B, G]: -kl_coef times its log-ratio to the
    reference, the episode's (whitened) score added on its last character."""
    rewards = -kl_coef * (logprobs - ref_logprobs)
    rewards[:, -1] += scores
    return rewards


def gae(rewards, values, gae_lambda, gamma=1.0):
    """Advantages and returns [B, G] of episodes that end after their last
    character (nothing to bootstrap)."""
    advantages = torch.zeros_like(rewards)
    last, next_value = torch.zeros_like(rewards[:, 0]), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * gae_lambda * last
        advantages[:, t], next_value = last, values[:, t]
    return advantages, advantages + values


def update(policy, optimizer, batch, args, rng):
    """PPO's epochs over minibatches of whole episodes; the mean losses."""
    texts, old_logprobs, old_values, advantages, returns = batch
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    written = texts[:, args.prompt_len:]
    totals = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0}
    steps = 0
    for _ in range(args.update_epochs):
        for episodes in np.array_split(rng.permutation(len(texts)), max(1, len(texts) // args.minibatch_size)):
            logits, values = sequence_outputs(policy, texts[episodes], args.prompt_len)
            logprobs, entropy = policy.head.log_prob_entropy(logits, written[episodes])
            log_ratio = logprobs - old_logprobs[episodes]
            ratio = log_ratio.exp()
            adv = advantages[episodes]
            policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
            clipped = old_values[episodes] + (values - old_values[episodes]).clamp(-args.clip_coef, args.clip_coef)
            value_loss = 0.5 * torch.max((values - returns[episodes]) ** 2,
                                         (clipped - returns[episodes]) ** 2).mean()
            loss = policy_loss + args.vf_coef * value_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                for key, value in (("policy_loss", policy_loss), ("value_loss", value_loss),
                                   ("entropy", entropy.mean()), ("approx_kl", ((ratio - 1) - log_ratio).mean()),
                                   ("clip_fraction", ((ratio - 1).abs() > args.clip_coef).float().mean())):
                    totals[key] += value.item()
            steps += 1
    return {key: value / steps for key, value in totals.items()}


def adapt_kl_coef(kl_coef, kl, target_kl, episodes, horizon):
    """Ziegler et al.'s proportional controller: kl_coef grows when the KL is
    above its target and shrinks below it, by at most 20% of episodes / horizon."""
    if target_kl <= 0:
        return kl_coef
    error = min(max(kl / target_kl - 1, -0.2), 0.2)
    return kl_coef * (1 + error * episodes / horizon)


def check_rlhf_args(args, gpt, reward_tokenizer, tokenizer):
    # The counts' lower bounds are the config's (puffer.config.RANGES); the block is the --init model's.
    if args.prompt_len + args.gen_len > gpt.block_size:
        raise ValueError(f"rlhf.prompt_len + rlhf.gen_len must fit in the GPT's block of "
                         f"{gpt.block_size} characters, got {args.prompt_len} + {args.gen_len}")
    if reward_tokenizer is not None and reward_tokenizer.chars != tokenizer.chars:
        raise ValueError("the reward model's vocabulary is not the policy's: it was trained on another corpus")


def train_rlhf(config, run_dir, init, reward_model, reward_tokenizer=None, reward_model_path=None, resume=None,
               live=None):
    """Fine-tunes the language model of `init` against `reward_model` (a
    module: ids [B, T], lengths [B] -> scores [B]; from `reward_model_path`,
    which the checkpoint records) for rlhf.updates updates, writing
    config.json, metrics.jsonl and checkpoint.pt into `run_dir`; `resume`: a
    checkpoint of this run to go on from, as load_checkpoint read it. Returns a summary."""
    args = as_namespace(config).rlhf
    train_args = config["train"]
    reward_model_path = None if reward_model_path is None else str(reward_model_path)
    judge = get_judge(args.judge)
    init_saved = load_checkpoint(init)
    reference, tokenizer = language_model(init_saved, init)
    check_rlhf_args(args, reference, reward_tokenizer, tokenizer)
    # train.device: the CUDA path (prompts copied in, texts and scores kept
    # there, decoded on the CPU for the judge) has not run on a GPU yet.
    device = seed_and_device(as_namespace(config).train)  # the value head's initial weights, then the samples
    reference.to(device).requires_grad_(False)
    reward_model.to(device).eval().requires_grad_(False)
    # Eval mode throughout: dropout would make the ratio of the first epoch differ from 1.
    policy = policy_from_language_model(reference).to(device).eval()
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate, eps=1e-5)
    _, train_tokens, _ = load_corpus_tokens()
    rng = np.random.default_rng(train_args["seed"])
    moments, kl_coef, start_update = RunningMoments(), args.kl_coef, 0
    config = with_architecture_of(config, init_saved)
    if resume is not None:
        if resume.get("kind") != "rlhf":
            raise ValueError("the checkpoint to resume is not one of puffer train text --reward-model")
        policy.load_state_dict(resume["policy"])
        optimizer.load_state_dict(resume["optimizer"])
        moments.load_state_dict(resume["moments"])
        kl_coef, start_update = resume["kl_coef"], resume["update"]
        rng.bit_generator.state = resume["numpy_rng"]
        restore_rng(resume, device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"algo": "rlhf", "init": str(init),
                                                    "reward_model": reward_model_path,
                                                    **config}, indent=2))
    dashboard = Dashboard(f"puffer rlhf: text, {args.updates} updates", run_dir / "metrics.jsonl", live=live,
                          sections=SECTIONS, logger=train_args["logger"], config=config)
    path = run_dir / CHECKPOINT_NAME
    episode_chars = args.gen_len * args.batch_size
    start, history, shown = time.perf_counter(), [], float("-inf")

    def save(update_index):
        save_checkpoint(path, {"kind": "rlhf", "env_name": "text", "config": config, "init": str(init),
                               "reward_model": reward_model_path,
                               "policy": policy.state_dict(), "optimizer": optimizer.state_dict(),
                               "moments": moments.state_dict(), "kl_coef": kl_coef, "update": update_index,
                               "numpy_rng": rng.bit_generator.state, **rng_state(device)})

    try:
        for update_index in range(start_update, args.updates):
            prompts = sample_prompts(train_tokens, args.batch_size, args.prompt_len, rng).to(device)
            texts, logprobs, values = collect(policy, prompts, args.gen_len)
            with torch.no_grad():
                ref_logprobs = character_logprobs(reference, texts, args.prompt_len)
                scores = reward_scores(reward_model, texts)
            moments.update(scores)
            rewards = kl_rewards(logprobs, ref_logprobs, (scores - moments.mean) / moments.std, kl_coef)
            advantages, returns = gae(rewards, values, args.gae_lambda)
            losses = update(policy, optimizer, (texts, logprobs, values, advantages, returns), args, rng)
            kl = (logprobs - ref_logprobs).mean().item()  # nats a character, on the policy's own samples
            metrics = {"global_step": (update_index + 1) * episode_chars, "update": update_index + 1,
                       "wall_time": time.perf_counter() - start,
                       "rm_score": scores.mean().item(),
                       "judge_score": float(np.mean([judge(*pair) for pair in decode_pairs(tokenizer, texts,
                                                                                          args.prompt_len)])),
                       "kl": kl, "kl_coef": kl_coef, **losses}
            metrics["sps"] = (update_index + 1 - start_update) * episode_chars / metrics["wall_time"]
            kl_coef = adapt_kl_coef(kl_coef, kl, args.target_kl, args.batch_size, args.kl_horizon)
            dashboard.write(metrics)
            if metrics["wall_time"] - shown >= train_args["log_interval"] or update_index + 1 == args.updates:
                dashboard.show(metrics)
                shown = metrics["wall_time"]
            history.append(metrics)
            if (update_index + 1) % train_args["checkpoint_interval"] == 0:
                save(update_index + 1)
        save(args.updates)
    finally:
        dashboard.close()
    return {"checkpoint": str(path), "history": history, "seconds": time.perf_counter() - start}


def decode_pairs(tokenizer, texts, prompt_len):
    """(prompt, continuation) strings of texts [B, P + G]."""
    return [(tokenizer.decode(row[:prompt_len]), tokenizer.decode(row[prompt_len:])) for row in texts.cpu().numpy()]


@torch.no_grad()
def win_rate(model, baseline, judge, prompt_tokens, prompts, prompt_len, gen_len, seed, batch_size=256):
    """`model` against `baseline` under `judge`, over `prompts` prompts of
    `prompt_tokens` (the held-out tail) at offsets drawn from `seed`: each
    writes one continuation of each prompt at temperature 1, and the judge's
    higher score wins (equal scores: half a win each). Returns the win rate
    with a 95% confidence interval (normal approximation over prompts), the
    model's KL to the baseline in nats a character on its own samples, and
    the (prompt, model text, baseline text) triples."""
    if prompts < 2:
        raise ValueError(f"a win rate with a confidence interval needs at least 2 prompts, got {prompts}")
    if prompt_len < 1 or gen_len < 1 or prompt_len + gen_len > min(model.block_size, baseline.block_size):
        raise ValueError(f"prompt_len + gen_len (both at least 1) must fit in both models' blocks "
                         f"({model.block_size}, {baseline.block_size}), got {prompt_len} + {gen_len}")
    from puffer.tokenizer import CharTokenizer
    tokenizer = CharTokenizer.from_corpus()
    rng = np.random.default_rng(seed)
    all_prompts = sample_prompts(prompt_tokens, prompts, prompt_len, rng)
    torch.manual_seed(seed)
    outcomes, kls, triples = [], [], []
    for chunk in all_prompts.split(batch_size):
        texts = model.generate(chunk, gen_len)
        baseline_texts = baseline.generate(chunk, gen_len)
        kls.append((character_logprobs(model, texts, prompt_len)
                    - character_logprobs(baseline, texts, prompt_len)).mean(1))
        for (prompt, text), (_, other) in zip(decode_pairs(tokenizer, texts, prompt_len),
                                              decode_pairs(tokenizer, baseline_texts, prompt_len)):
            mine, theirs = judge(prompt, text), judge(prompt, other)
            outcomes.append(1.0 if mine > theirs else 0.5 if mine == theirs else 0.0)
            triples.append((prompt, text, other))
    outcomes = np.array(outcomes)
    rate, half_width = outcomes.mean(), 1.96 * outcomes.std(ddof=1) / math.sqrt(len(outcomes))
    return {"win_rate": float(rate), "low": float(rate - half_width), "high": float(rate + half_width),
            "wins": int((outcomes == 1).sum()), "ties": int((outcomes == 0.5).sum()),
            "losses": int((outcomes == 0).sum()), "kl": torch.cat(kls).mean().item(), "samples": triples}
