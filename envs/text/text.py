import os

import numpy as np
from gymnasium import spaces

from puffer.render import Canvas, check_render_mode
from puffer.tokenizer import CharTokenizer, corpus_path, corpus_tokens, split_index
from puffer.vector import PufferEnv, check_int
from puffer.envs.text import binding
from puffer.envs.text.binding import DISCOUNT, MAX_ORDER, MAX_VOCAB, NGramModel

REWARDS = {"ngram": binding.REWARD_NGRAM, "match": binding.REWARD_MATCH}
SPLITS = ("train", "eval")
MAX_CONTEXT = 4096

# (corpus path, order) -> its NGramModel. Built on first use and kept for the
# life of the process: the C envs point into these tables (and into the
# corpus arrays, cached by puffer.tokenizer the same way), so they are never
# freed while an env could still use them.
_MODELS = {}


def _resolve(corpus):
    if corpus is None:
        return corpus_path()
    if not isinstance(corpus, (str, os.PathLike)):
        raise ValueError(f"corpus must be None (the shipped Tiny Shakespeare) or the path of a "
                         f"UTF-8 text file, got {corpus!r}")
    return os.path.realpath(os.fspath(corpus))


def ngram_model(order=4, corpus=None):
    """The n-gram model (see text.h) of order `order` of the training head of
    `corpus` (the shipped one by default), built once per process."""
    order = check_int("ngram_order", order, 1, MAX_ORDER)
    path = _resolve(corpus)
    key = (path, order)
    if key not in _MODELS:
        tokens = corpus_tokens(path)
        vocab = CharTokenizer.from_corpus(path).vocab_size
        _MODELS[key] = NGramModel(tokens[:split_index(len(tokens))], vocab, order, DISCOUNT)
    return _MODELS[key]


class Text(PufferEnv):
    """Write text one character at a time. Each episode shows `prompt_len`
    characters of the corpus at a random offset (from its training head, or
    its held-out last 10% with split="eval"); the agent then writes `gen_len`
    characters, one per step, and the episode ends (a terminal: the task is
    done).

    Observation: the last `context` character ids of the text so far (uint8,
    oldest first; prompt_len >= context). Action: the next character's id.
    Reward: "ngram": log P(character | the ngram_order-1 before it) under a
    smoothed n-gram model of the head (interpolated absolute discounting);
    "match": 1 if the character equals the corpus continuation of the prompt.
    Score: "match": the fraction matched; "ngram": exp(mean log-prob), i.e.
    1 / perplexity. The vocabulary is `self.tokenizer` (puffer.tokenizer).
    `corpus`: None for the shipped Tiny Shakespeare, else a text file's path.
    See text.h."""

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 20}

    def __init__(self, num_envs=1, context=64, prompt_len=64, gen_len=64, reward="ngram",
                 ngram_order=4, split="train", corpus=None, buffers=None):
        context = check_int("context", context, 1, MAX_CONTEXT)
        prompt_len = check_int("prompt_len", prompt_len, context)
        gen_len = check_int("gen_len", gen_len, 1)
        ngram_order = check_int("ngram_order", ngram_order, 1, MAX_ORDER)
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(map(repr, REWARDS))}, got {reward!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
        path = _resolve(corpus)
        self.tokenizer = CharTokenizer.from_corpus(path)
        vocab = self.tokenizer.vocab_size
        if vocab > MAX_VOCAB:
            raise ValueError(f"the corpus has {vocab} distinct characters; at most {MAX_VOCAB} fit "
                             f"in a uint8 observation")
        tokens = corpus_tokens(path)
        head = split_index(len(tokens))
        low, high = (0, head) if split == "train" else (head, len(tokens))
        span = high - low - prompt_len - gen_len + 1
        if span < 1:
            raise ValueError(f"prompt_len + gen_len = {prompt_len + gen_len} characters do not fit "
                             f"in the {split} part of the corpus ({high - low} characters)")
        self.context, self.prompt_len, self.gen_len = context, prompt_len, gen_len
        self.reward, self.split = reward, split
        self.corpus = tokens                     # the whole corpus, read-only, shared
        self.prompt_range = (low, low + span)    # prompts start in [low, low + span)
        self.ngram = ngram_model(ngram_order, path) if reward == "ngram" else None
        self.single_observation_space = spaces.Box(0, vocab - 1, (context,), np.uint8)
        self.single_action_space = spaces.Discrete(vocab, dtype=np.int32)
        super().__init__(num_envs, buffers)
        self.bind(binding.VecEnv, dict(corpus=tokens, model=self.ngram, context=context,
                                       prompt_len=prompt_len, gen_len=gen_len,
                                       reward_mode=REWARDS[reward], prompt_start=low,
                                       prompt_span=span))

    def decode(self, ids):
        """The text of token ids (an observation row, say)."""
        return self.tokenizer.decode(ids)

    def render(self, mode):
        """Env 0's text as its agent sees it: the last `context` characters,
        the prompt's end followed by what has been written. "ansi": that text;
        "rgb_array": the same characters one to a cell, 32 to a row, a newline
        a small grey "\\n", so that every frame of an episode has the same size."""
        check_render_mode(self, mode)
        text = self.decode(self.observations[0])
        if mode == "ansi":
            return text
        columns = min(self.context, 32)
        rows = -(-self.context // columns)
        # One world unit a cell (12x20 pixels), y up: row 0 is the top one.
        canvas = Canvas((-0.5, -0.5, columns + 0.5, rows + 0.5), (12 * (columns + 1), 20 * (rows + 1)),
                        (255, 255, 255))
        for i, char in enumerate(text):
            x, y = i % columns, rows - i // columns
            if char == "\n":
                canvas.write(x, y - 0.2, "\\n", (150, 150, 150), 10)  # smaller, so lowered to the line
            else:
                canvas.write(x, y, char, (0, 0, 0), 14)
        return canvas.array()
