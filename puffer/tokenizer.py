"""A character tokenizer for the text env and the GPT.

The vocabulary is the sorted distinct characters of a corpus: the shipped
one, Tiny Shakespeare (1,115,394 characters, 65 distinct), gives ids 0..64,
with "\\n" as 0 and " " as 1. `encode` maps a string to a numpy array of ids
(uint8 while the vocabulary fits in a byte, else int32) and `decode` maps ids
back; `decode(encode(s)) == s` for any string of the vocabulary's characters.

The corpus is split once, the same way for everyone: the first 90% (the
head, `split_index`) is for training (the text env's n-gram model and training
prompts, GPT pretraining), the last 10% (the tail) is held out (the text
env's eval prompts, the pretraining validation loss).
"""
from functools import lru_cache
from importlib import resources

import numpy as np

CORPUS_NAME = "tinyshakespeare.txt"


def corpus_path():
    """Path of the shipped corpus (inside the installed package)."""
    return str(resources.files("puffer.envs.text").joinpath(CORPUS_NAME))


def split_index(length):
    """Where the held-out tail of a corpus of `length` tokens starts: the head
    [0, split) is the training part, the tail [split, length) the last 10%."""
    return length * 9 // 10


@lru_cache(maxsize=None)
def _read(path):
    with open(path, encoding="utf-8", newline="") as f:  # newline="": keep the text as it is
        return f.read()


def load_corpus(path=None):
    """The text of the corpus at `path` (the shipped one by default), read once per process."""
    return _read(str(path) if path is not None else corpus_path())


class CharTokenizer:
    """Characters <-> ids; the vocabulary is the sorted distinct characters of `chars`."""

    def __init__(self, chars):
        chars = "".join(sorted(set(chars)))
        if not chars:
            raise ValueError("a tokenizer needs at least one character")
        self.chars = chars
        self.vocab_size = len(chars)
        self.dtype = np.dtype(np.uint8 if self.vocab_size <= 256 else np.int32)
        self._codes = np.frombuffer(chars.encode("utf-32-le"), np.uint32).copy()  # id -> code point
        # Code point -> id + 1 (0: not in the vocabulary), for code points up to the largest.
        self._lut = np.zeros(int(self._codes.max()) + 1, np.int32)
        self._lut[self._codes] = np.arange(1, self.vocab_size + 1, dtype=np.int32)

    @classmethod
    def from_text(cls, text):
        return cls(text)

    @classmethod
    def from_corpus(cls, path=None):
        """The tokenizer of the corpus at `path` (the shipped one by default)."""
        return _corpus_tokenizer(str(path) if path is not None else corpus_path())

    def __len__(self):
        return self.vocab_size

    def __repr__(self):
        return f"CharTokenizer({self.chars!r})"

    def __eq__(self, other):
        return isinstance(other, CharTokenizer) and other.chars == self.chars

    def __hash__(self):
        return hash(self.chars)

    def encode(self, text):
        """The ids of the characters of `text`, a 1-D numpy array (uint8 for a
        vocabulary of at most 256). ValueError names the first unknown character."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        ids = self._lut[np.minimum(codes, len(self._lut) - 1)] - 1
        ids[codes >= len(self._lut)] = -1
        if ids.size and ids.min() < 0:
            bad = text[int(np.argmax(ids < 0))]
            raise ValueError(f"character {bad!r} is not in the vocabulary of {self.vocab_size} characters")
        return ids.astype(self.dtype)

    def decode(self, ids):
        """The string of the ids in `ids` (any integer array-like, or one int)."""
        ids = np.asarray(ids)
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu":
            raise TypeError(f"decode takes integer ids, got dtype {ids.dtype}")
        ids = ids.reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"id {bad} is out of range: the vocabulary has {self.vocab_size} characters")
        return self._codes[ids].tobytes().decode("utf-32-le")


@lru_cache(maxsize=None)
def _corpus_tokenizer(path):
    return CharTokenizer(load_corpus(path))


@lru_cache(maxsize=None)
def _corpus_tokens(path):
    tokenizer = _corpus_tokenizer(path)
    tokens = tokenizer.encode(load_corpus(path))
    tokens.setflags(write=False)  # shared by everyone in the process: nobody may change it
    return tokens


def load_corpus_tokens(path=None):
    """(tokenizer, train_tokens, val_tokens) of the corpus at `path` (the
    shipped one by default): the head and the held-out tail (see
    `split_index`), as read-only views of one array encoded once per process."""
    path = str(path) if path is not None else corpus_path()
    tokens = corpus_tokens(path)
    split = split_index(len(tokens))
    return _corpus_tokenizer(path), tokens[:split], tokens[split:]


def corpus_tokens(path=None):
    """All the tokens of the corpus at `path` (default: the shipped one), a
    read-only array encoded once per process."""
    return _corpus_tokens(str(path) if path is not None else corpus_path())
