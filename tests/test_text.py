"""The text env (envs/text), its n-gram reward and the character tokenizer."""
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from puffer.envs.text.binding import DISCOUNT, NGramModel
from puffer.envs.text.text import Text, ngram_model
from puffer.tokenizer import (CharTokenizer, corpus_tokens, load_corpus, load_corpus_tokens,
                              split_index)

SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------
# Tokenizer


def test_vocabulary_is_the_sorted_distinct_characters():
    text = load_corpus()
    assert len(text) == 1_115_394
    tokenizer = CharTokenizer.from_corpus()
    assert tokenizer.vocab_size == len(tokenizer) == 65
    assert tokenizer.chars == SHAKESPEARE_CHARS == "".join(sorted(set(text)))
    assert tokenizer == CharTokenizer(SHAKESPEARE_CHARS) and tokenizer is CharTokenizer.from_corpus()


def test_round_trip_over_the_whole_corpus():
    text = load_corpus()
    tokenizer = CharTokenizer.from_corpus()
    ids = tokenizer.encode(text)
    assert ids.dtype == np.uint8 and ids.shape == (len(text),) and ids.max() == 64
    assert tokenizer.decode(ids) == text
    assert np.array_equal(ids, corpus_tokens())


def test_round_trip_on_a_sample():
    tokenizer = CharTokenizer.from_corpus()
    sample = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    ids = tokenizer.encode(sample)
    assert ids.tolist() == [SHAKESPEARE_CHARS.index(c) for c in sample]
    assert tokenizer.decode(ids) == sample
    assert tokenizer.decode(ids.astype(np.int64)) == sample and tokenizer.decode(ids.tolist()) == sample
    assert tokenizer.encode("").size == 0 and tokenizer.decode([]) == ""
    assert tokenizer.encode("\n ").tolist() == [0, 1] and tokenizer.decode(64) == "z"
    # Any vocabulary, non-ASCII included.
    other = CharTokenizer("héllo wörld ✓")
    assert other.decode(other.encode("wörld ✓ hé")) == "wörld ✓ hé"


def test_tokenizer_errors():
    tokenizer = CharTokenizer.from_corpus()
    with pytest.raises(ValueError, match="'#' is not in the vocabulary"):
        tokenizer.encode("ab#c")
    with pytest.raises(ValueError, match="'é' is not in the vocabulary"):
        tokenizer.encode("café")
    with pytest.raises(ValueError, match="id 65 is out of range"):
        tokenizer.decode([3, 65])
    with pytest.raises(ValueError, match="out of range"):
        tokenizer.decode([-1])
    with pytest.raises(TypeError):
        tokenizer.decode(np.zeros(3, np.float32))


def test_corpus_split():
    tokenizer, train, val = load_corpus_tokens()
    tokens = corpus_tokens()
    assert len(train) == split_index(len(tokens)) == 1_003_854 and len(train) + len(val) == len(tokens)
    assert np.array_equal(np.concatenate([train, val]), tokens)
    assert not tokens.flags.writeable


# ---------------------------------------------------------------------------
# The n-gram model against a slow reference


class ReferenceNGram:
    """Interpolated absolute discounting, straight from the formula in text.h."""

    def __init__(self, tokens, vocab, order, discount=DISCOUNT):
        self.tokens, self.vocab, self.order, self.d = list(tokens), vocab, order, discount
        n = len(self.tokens)
        self.counts = Counter()                 # string (tuple) -> occurrences
        self.followers = defaultdict(Counter)   # history -> Counter of the next character
        for k in range(order + 1):
            for j in range(n - k + 1):
                self.counts[tuple(self.tokens[j:j + k])] += 1
        for k in range(order):
            for j in range(n - k):
                self.followers[tuple(self.tokens[j:j + k])][self.tokens[j + k]] += 1

    def prob(self, history, c):
        history = tuple(history)
        if not history:
            followers = self.followers[()]
            total = sum(followers.values())
            return (max(followers[c] - self.d, 0) + self.d * len(followers) / self.vocab) / total
        followers = self.followers.get(history)
        lower = self.prob(history[1:], c)
        if not followers:
            return lower
        total = sum(followers.values())
        return max(followers[c] - self.d, 0) / total + self.d * len(followers) / total * lower

    def logprob(self, history, c):
        history = tuple(history)[max(0, len(history) - self.order + 1):] if self.order > 1 else ()
        return math.log(self.prob(history, c))


SMALL_TEXT = load_corpus()[:2048]


def small_pairs(tokens, vocab, rng, count):
    """(history, char) pairs: histories cut from the text (seen contexts), and
    random ones (mostly unseen); characters from the text and from the whole
    vocabulary (some never seen)."""
    pairs = []
    for i in range(count):
        length = int(rng.integers(0, 12))
        if i % 2:
            start = int(rng.integers(0, len(tokens) - length))
            history = [int(t) for t in tokens[start:start + length]]
            c = int(tokens[start + length]) if i % 4 == 1 else int(rng.integers(0, vocab))
        else:
            history = rng.integers(0, vocab, length).tolist()
            c = int(rng.integers(0, vocab))
        pairs.append((history, c))
    return pairs


@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
def test_c_ngram_matches_the_reference(order):
    tokenizer = CharTokenizer.from_corpus()  # 65 characters, many unseen in 2 KB
    tokens = tokenizer.encode(SMALL_TEXT)
    vocab = tokenizer.vocab_size
    model = NGramModel(tokens, vocab, order)
    reference = ReferenceNGram(tokens, vocab, order)
    assert len(set(tokens.tolist())) < vocab
    rng = np.random.default_rng(order)
    for history, c in small_pairs(tokens, vocab, rng, 600):
        assert model.logprob(history, c) == pytest.approx(reference.logprob(history, c), abs=1e-5), \
            (history, c)
    # A distribution over the vocabulary for any history.
    for history, _ in small_pairs(tokens, vocab, rng, 20):
        logprobs = model.logprobs(history)
        assert logprobs.shape == (vocab,) and (logprobs < 0).all()
        assert np.exp(logprobs.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)
    # score(): the log-prob of each token after the ones before it.
    text = tokens[:300]
    expected = [reference.logprob(text[:i].tolist(), int(text[i])) for i in range(len(text))]
    assert np.allclose(model.score(text), expected, atol=1e-5)


def test_ngram_counts_and_sizes():
    tokens = CharTokenizer("abc").encode("abcabcaab")
    model = NGramModel(tokens, 3, 3)
    # States: "", a, b, c, then ab, bc, ca, aa: the distinct substrings of up to 2 characters.
    assert model.num_states == 8
    # Edges: 3 from "", then the distinct 2-grams (ab bc ca aa) and 3-grams (abc bca cab caa aab).
    assert model.num_edges == 3 + 4 + 5
    assert model.nbytes == 8 * 3 * 8 + 12 * 8
    with pytest.raises(ValueError, match="order"):
        NGramModel(tokens, 3, 0)
    with pytest.raises(ValueError, match="out of range"):
        NGramModel(tokens, 2, 2)
    with pytest.raises(ValueError, match="at least one token"):
        NGramModel(tokens[:0], 3, 2)


def test_shakespeare_model():
    tokenizer, train, val = load_corpus_tokens()
    model = ngram_model(4)
    assert ngram_model(4) is model                     # built once per process
    assert model.num_states == 12_674 and model.num_edges == 61_212 and model.nbytes < 1_000_000
    # Held-out log-likelihood of the 4-gram model: about -1.79 nats per character.
    assert model.score(val).mean() == pytest.approx(-1.7895, abs=0.002)
    logprobs = model.logprobs(tokenizer.encode("To be or not to b"))
    assert tokenizer.decode(np.argmax(logprobs)) == "e"
    assert np.exp(logprobs.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------
# The env


@pytest.fixture
def small_corpus(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


def run_and_check(env, steps, rng, expected_reward):
    """Steps `env` with random actions, tracking each env's text (prompt and
    written characters): checks the window, the terminals, the final
    observations and, via expected_reward(history, action), every reward.
    Returns the logs and the prompts seen (as id lists)."""
    n, context = env.num_envs, env.context
    obs, _ = env.reset(seed=3)
    histories = [obs[i].tolist() for i in range(n)]
    prompts = [h[:] for h in histories]
    lengths = [0] * n
    returns = [0.0] * n
    finished = []
    for _ in range(steps):
        actions = rng.integers(0, env.single_action_space.n, n, dtype=np.int32)
        expected = [expected_reward(histories[i], int(actions[i])) for i in range(n)]
        obs, rewards, terminals, truncations, infos = env.step(actions)
        assert not truncations.any()
        for i in range(n):
            histories[i].append(int(actions[i]))
            lengths[i] += 1
            returns[i] += float(rewards[i])
            assert rewards[i] == pytest.approx(expected[i], abs=1e-5)
            assert terminals[i] == (lengths[i] == env.gen_len)
            if terminals[i]:
                assert infos["final_observations"][i].tolist() == histories[i][-context:]
                finished.append((lengths[i], returns[i]))
                histories[i] = obs[i].tolist()
                prompts.append(histories[i][:])
                lengths[i], returns[i] = 0, 0.0
            else:
                assert obs[i].tolist() == histories[i][-context:]
    return finished, prompts


@pytest.mark.parametrize("order", [1, 3, 5])
def test_ngram_rewards_against_the_reference(small_corpus, order):
    env = Text(num_envs=8, context=6, prompt_len=6, gen_len=9, reward="ngram", ngram_order=order,
               corpus=small_corpus)
    tokens = corpus_tokens(small_corpus)
    reference = ReferenceNGram(tokens[:split_index(len(tokens))], env.tokenizer.vocab_size, order)
    assert env.tokenizer.chars == "".join(sorted(set(SMALL_TEXT)))
    finished, _ = run_and_check(env, 40, np.random.default_rng(order), reference.logprob)
    log = env.log()
    assert log["episodes"] == len(finished) == 8 * 4 and log["episode_length"] == 9
    assert log["episode_return"] == pytest.approx(np.mean([r for _, r in finished]), abs=1e-4)
    assert log["score"] == pytest.approx(np.mean([math.exp(r / 9) for _, r in finished]), abs=1e-5)


def test_prompt_longer_than_the_window(small_corpus):
    """The n-gram history is the whole text, not just the observed window: an
    env that shows 2 characters of its 12-character prompt gets the rewards of
    one that shows all 12 (same seed, so the same prompts)."""
    rng = np.random.default_rng(0)
    tokens = corpus_tokens(small_corpus)
    wide = Text(num_envs=8, context=12, prompt_len=12, gen_len=5, ngram_order=5, corpus=small_corpus)
    narrow = Text(num_envs=8, context=2, prompt_len=12, gen_len=5, ngram_order=5, corpus=small_corpus)
    reference = ReferenceNGram(tokens[:split_index(len(tokens))], wide.tokenizer.vocab_size, 5)
    assert np.array_equal(wide.reset(seed=4)[0][:, -2:], narrow.reset(seed=4)[0])
    for _ in range(12):
        actions = rng.integers(0, wide.single_action_space.n, 8, dtype=np.int32)
        history = [wide.observations[i].tolist() for i in range(8)]
        expected = [reference.logprob(h, int(a)) for h, a in zip(history, actions)]
        wide.step(actions)
        narrow.step(actions)
        assert np.allclose(wide.rewards, expected, atol=1e-5)
        assert np.array_equal(wide.rewards, narrow.rewards)
        assert np.array_equal(wide.observations[:, -2:], narrow.observations)


def test_match_reward_and_prompts_from_each_split(tmp_path):
    # Random letters: every window of 12 characters is unique, so a prompt
    # tells its offset in the corpus.
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 20000))
    path = tmp_path / "letters.txt"
    path.write_text(text, encoding="utf-8")
    tokenizer = CharTokenizer(text)
    tokens = tokenizer.encode(text)
    head = split_index(len(tokens))
    where = {text[j:j + 12]: j for j in range(len(text) - 11)}
    assert len(where) == len(text) - 11
    for split in ("train", "eval"):
        env = Text(num_envs=64, context=12, prompt_len=12, gen_len=7, reward="match", split=split,
                   corpus=path)
        def expected(history, action):
            # The prompt is the first 12 characters of the history.
            start = where[tokenizer.decode(history[:12])]
            return float(action == tokens[start + len(history)])

        finished, prompts = run_and_check(env, 50, rng, expected)
        starts = [where[tokenizer.decode(p)] for p in prompts]
        if split == "train":
            assert min(starts) >= 0 and max(starts) + 12 + 7 <= head
        else:
            assert min(starts) >= head and max(starts) + 12 + 7 <= len(tokens)
        assert max(starts) - min(starts) > (head if split == "train" else len(tokens) - head) // 2
        log = env.log()
        assert log["score"] == pytest.approx(log["episode_return"] / 7)

    # Writing the corpus continuation scores 1 every step.
    env = Text(num_envs=16, context=12, prompt_len=12, gen_len=7, reward="match", corpus=path)
    obs, _ = env.reset(seed=1)
    starts = [where[tokenizer.decode(row)] for row in obs]
    for t in range(7):
        obs, rewards, terminals, _, _ = env.step(np.array([tokens[s + 12 + t] for s in starts], np.int32))
        assert (rewards == 1).all() and terminals.all() == (t == 6)
    assert env.log() == {"episode_return": 7.0, "episode_length": 7.0, "score": 1.0, "episodes": 16}


def test_shakespeare_eval_prompts_come_from_the_tail():
    tokens = corpus_tokens()
    head = split_index(len(tokens))
    train, evaluation = Text(num_envs=4), Text(num_envs=4, split="eval", reward="match")
    assert train.prompt_range == (0, head - 64 - 64 + 1)
    assert evaluation.prompt_range == (head, len(tokens) - 64 - 64 + 1)
    obs, _ = evaluation.reset(seed=0)
    tail = evaluation.decode(tokens[head:])
    for row in obs:
        assert evaluation.decode(row) in tail


def test_determinism():
    actions = np.random.default_rng(0).integers(0, 65, (150, 32), dtype=np.int32)

    def rollout(seed, **options):
        env = Text(num_envs=32, gen_len=20, **options)
        trajectory = [env.reset(seed=seed)[0].copy()]
        for batch in actions:
            obs, rewards, terminals, _, _ = env.step(batch)
            trajectory += [obs.copy(), rewards.copy(), terminals.copy()]
        return trajectory

    for options in ({}, {"reward": "match"}, {"split": "eval", "ngram_order": 6}):
        first, second, other = rollout(5, **options), rollout(5, **options), rollout(6, **options)
        assert all(np.array_equal(a, b) for a, b in zip(first, second))
        assert not np.array_equal(first[0], other[0])


def test_spaces_and_defaults():
    env = Text(num_envs=3)
    assert env.single_observation_space.shape == (64,) and env.single_observation_space.dtype == np.uint8
    assert env.single_observation_space.high.max() == 64
    assert env.single_action_space.n == 65 and env.single_action_space.dtype == np.int32
    assert env.observations.dtype == np.uint8 and env.ngram is ngram_model(4)
    assert Text(num_envs=1, reward="match").ngram is None


@pytest.mark.parametrize("options,match", [
    (dict(context=0), "context"),
    (dict(context=65), "prompt_len"),
    (dict(prompt_len=10, context=11), "prompt_len"),
    (dict(gen_len=0), "gen_len"),
    (dict(ngram_order=0), "ngram_order"),
    (dict(ngram_order=11), "ngram_order"),
    (dict(reward="bleu"), "reward"),
    (dict(split="test"), "split"),
    (dict(prompt_len=60_000, context=64, gen_len=60_000, split="eval"), "do not fit"),
    (dict(corpus=3), "corpus"),
])
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        Text(num_envs=1, **options)
