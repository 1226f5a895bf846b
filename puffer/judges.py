"""Scripted judges: stand-ins for a person labelling preferences.

A judge scores a continuation of a prompt, `judge(prompt, text) -> float`,
higher for better text; `choose` turns two scores into a noisy choice. A
reward model trained on the choices never sees the scores: it has to find
out what the judge likes, as it would with a person.
"""
import math
from functools import lru_cache

from puffer.envs.text.binding import DISCOUNT, NGramModel
from puffer.tokenizer import load_corpus_tokens

FLUENCY_ORDER = 5
# A text that only loops (every 4-gram a repeat) loses 4 nats a character:
# about the gap between corpus text (-2.3 nats a character under the held-out
# model) and the same characters shuffled (-6.5), so a loop is rated like
# noise. Corpus text repeats 3% of its 4-grams in 64 characters, costing
# 0.1: well inside the spread of its log-probability (0.6).
REPETITION_WEIGHT = 4.0
# Verse lines: a capital first letter and 20 to 55 characters, as are 84% of
# the corpus's lines of speech (those not ending in ":", the speaker's name).
VERSE_LENGTHS = range(20, 56)


@lru_cache(maxsize=None)
def _held_out_model():
    """The n-gram model of the corpus's held-out tail: not the text env's
    model of the training head, which a policy tuned on that env has learnt
    to please."""
    tokenizer, _, held_out = load_corpus_tokens()
    return tokenizer, NGramModel(held_out, tokenizer.vocab_size, FLUENCY_ORDER, DISCOUNT)


def repetition(text, n=4):
    """The fraction of the character n-grams of `text` that occurred earlier in it."""
    grams = [text[i:i + n] for i in range(len(text) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def fluency(prompt, text):
    """Mean log-probability a character of `text`, given the prompt before
    it, under the held-out n-gram model, less REPETITION_WEIGHT times its
    repetition."""
    if not text:
        raise ValueError("fluency needs a non-empty text to score")
    tokenizer, model = _held_out_model()
    logprobs = model.score(tokenizer.encode(prompt[-(FLUENCY_ORDER - 1):] + text))[-len(text):]
    return float(logprobs.mean()) - REPETITION_WEIGHT * repetition(text)


def is_verse_line(line):
    return line[:1].isupper() and len(line) in VERSE_LENGTHS


def verse(prompt, text):
    """The fraction of the lines `text` writes that are verse lines. A line
    counts whole, the part the prompt began included; a speaker's line
    ("NAME:") and an empty one count for nothing; the unfinished last line
    counts only once it is too long to be verse. 0 with nothing to count."""
    lines = (prompt.rsplit("\n", 1)[-1] + text).split("\n")
    finished, last = lines[:-1], lines[-1]
    judged = [line for line in finished if line and not line.endswith(":")]
    if len(last) > VERSE_LENGTHS[-1]:
        judged.append(last)
    return sum(map(is_verse_line, judged)) / len(judged) if judged else 0.0


JUDGES = {"fluency": fluency, "verse": verse}


def get_judge(name):
    if name not in JUDGES:
        raise ValueError(f"unknown judge {name!r}: the judges are {', '.join(JUDGES)}")
    return JUDGES[name]


def choose(judge, prompt, first, second, rng, noise):
    """A Bradley-Terry choice: "first" with probability
    sigmoid((score(first) - score(second)) / noise), else "second"; "tie"
    when the texts are the same. `rng`: a numpy Generator."""
    if noise <= 0:
        raise ValueError(f"noise must be positive, got {noise}")
    if first == second:
        return "tie"
    margin = (judge(prompt, first) - judge(prompt, second)) / noise
    p_first = 0.5 * (1 + math.tanh(margin / 2))  # the sigmoid, without overflow
    return "first" if rng.random() < p_first else "second"
