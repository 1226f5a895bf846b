# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

from libc.stdint cimport uint32_t

import numpy as np

cdef extern from "text.h":
    int TEXT_REWARD_NGRAM
    int TEXT_REWARD_MATCH
    int TEXT_MAX_VOCAB
    int TEXT_MAX_ORDER
    double NGRAM_DISCOUNT
    ctypedef struct NGram:
        int vocab
        int order
        int stride
        uint32_t num_states
        uint32_t num_edges
        double discount
    NGram* ngram_build(const unsigned char* text, long n, int vocab, int order, double discount) nogil
    void ngram_free(NGram* m) nogil
    float ngram_step(const NGram* m, uint32_t* state, int c) nogil
    ctypedef struct Text:
        unsigned char* observations
        int* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        unsigned char* final_observations
        Log log
        uint64_t rng
        const unsigned char* corpus
        const NGram* ngram
        int context
        int prompt_len
        int gen_len
        int reward_mode
        int history
        long prompt_start
        long prompt_span
    void c_reset(Text* env) nogil
    void c_step(Text* env) nogil
    void c_close(Text* env) nogil

REWARD_NGRAM = TEXT_REWARD_NGRAM
REWARD_MATCH = TEXT_REWARD_MATCH
MAX_VOCAB = TEXT_MAX_VOCAB
MAX_ORDER = TEXT_MAX_ORDER
DISCOUNT = NGRAM_DISCOUNT


cdef class NGramModel:
    """The smoothed character n-gram model of a token array (see text.h):
    log P(c | history) by interpolated absolute discounting, held in C and
    shared by every env that points to it. Keeps a reference to `tokens`."""
    cdef NGram* model
    cdef readonly int vocab
    cdef readonly int order
    cdef readonly double discount
    cdef readonly object tokens

    def __cinit__(self, tokens, int vocab, int order, double discount=NGRAM_DISCOUNT):
        tokens = np.ascontiguousarray(tokens, dtype=np.uint8)
        cdef const unsigned char[::1] text = tokens
        cdef long n = text.shape[0]
        if not 1 <= vocab <= TEXT_MAX_VOCAB:
            raise ValueError(f"vocab must be in [1, {TEXT_MAX_VOCAB}], got {vocab}")
        if not 1 <= order <= TEXT_MAX_ORDER:
            raise ValueError(f"order must be in [1, {TEXT_MAX_ORDER}], got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        if n < 1:
            raise ValueError("the n-gram model needs at least one token")
        if order * (n + 1) + vocab >= 2**32:
            raise ValueError(f"a text of {n} tokens is too long for an order-{order} model")
        if n and int(tokens.max()) >= vocab:
            raise ValueError(f"token {int(tokens.max())} is out of range for a vocabulary of {vocab}")
        with nogil:
            self.model = ngram_build(&text[0], n, vocab, order, discount)
        if self.model == NULL:
            raise MemoryError(f"cannot build an order-{order} n-gram model of {n} tokens")
        self.vocab, self.order, self.discount, self.tokens = vocab, order, discount, tokens

    def __dealloc__(self):
        ngram_free(self.model)

    @property
    def num_states(self):
        return self.model.num_states

    @property
    def num_edges(self):
        return self.model.num_edges

    @property
    def nbytes(self):
        """Bytes of the C tables (states and edges)."""
        return self.model.num_states * self.model.stride * 8 + self.model.num_edges * 8

    cdef uint32_t _state(self, history) except? 0:
        cdef uint32_t state = 0
        for c in history:
            if not 0 <= c < self.vocab:
                raise ValueError(f"token {c} is out of range for a vocabulary of {self.vocab}")
            ngram_step(self.model, &state, c)
        return state

    def logprob(self, history, int c):
        """log P(c | history) (a float32 value), `history` a sequence of token
        ids (only its last order-1 count), by the same walk as the env's."""
        if not 0 <= c < self.vocab:
            raise ValueError(f"token {c} is out of range for a vocabulary of {self.vocab}")
        cdef uint32_t state = self._state(history)
        return ngram_step(self.model, &state, c)

    def logprobs(self, history):
        """log P(c | history) for every c, a float32 array of `vocab` values."""
        cdef uint32_t start = self._state(history), state
        out = np.empty(self.vocab, np.float32)
        cdef float[::1] view = out
        for c in range(self.vocab):
            state = start
            view[c] = ngram_step(self.model, &state, c)
        return out

    def score(self, tokens):
        """log P of each token of `tokens` given the ones before it (the first
        given nothing), a float32 array: the rewards of writing `tokens`."""
        tokens = np.ascontiguousarray(tokens, dtype=np.int64)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocab):
            raise ValueError(f"tokens out of range for a vocabulary of {self.vocab}")
        cdef const long long[::1] ids = tokens.reshape(-1)
        out = np.empty(ids.shape[0], np.float32)
        cdef float[::1] view = out
        cdef uint32_t state = 0
        cdef Py_ssize_t i
        with nogil:
            for i in range(ids.shape[0]):
                view[i] = ngram_step(self.model, &state, <int>ids[i])
        return out


ctypedef Text Env
ctypedef unsigned char Obs
ctypedef int Act

cdef void configure(Env* env, dict config) except *:
    # The corpus array and the model belong to the caller, who keeps them alive
    # (puffer.envs.text.text caches both for the life of the process).
    cdef const unsigned char[::1] corpus = config["corpus"]
    cdef NGramModel model
    env.corpus = &corpus[0]
    env.ngram = NULL
    env.history = 0
    if config["model"] is not None:
        model = config["model"]
        env.ngram = model.model
        env.history = min(model.order - 1, config["prompt_len"])
    cdef long context = config["context"], prompt_len = config["prompt_len"], gen_len = config["gen_len"]
    cdef long start = config["prompt_start"], span = config["prompt_span"]
    if not (1 <= context <= prompt_len and gen_len >= 1 and start >= 0 and 1 <= span <= 2**32
            and start + span - 1 + prompt_len + gen_len <= corpus.shape[0]):
        raise ValueError(f"inconsistent text env config: context {context}, prompt_len {prompt_len}, "
                         f"gen_len {gen_len}, prompts in [{start}, {start + span}) of a corpus of "
                         f"{corpus.shape[0]} tokens")
    env.context = config["context"]
    env.prompt_len = config["prompt_len"]
    env.gen_len = config["gen_len"]
    env.reward_mode = config["reward_mode"]
    if env.reward_mode not in (TEXT_REWARD_NGRAM, TEXT_REWARD_MATCH) or \
            (env.reward_mode == TEXT_REWARD_NGRAM) != (env.ngram != NULL):
        raise ValueError("the ngram reward needs a model, and only it")
    env.prompt_start = config["prompt_start"]
    env.prompt_span = config["prompt_span"]

include "vecenv.pxi"
