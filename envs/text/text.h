// text: write text one character at a time.
//
// The corpus is a token array (character ids, see puffer/tokenizer.py) shared
// by all envs of the process: the binding gets it once from Python and every
// env points into it. Its head (first 90%) is the training part, its tail the
// held-out part.
//
// Episode: a prompt of `prompt_len` characters of the corpus at a uniformly
// random offset, taken from the head (split "train") or the tail ("eval")
// such that its `gen_len` continuation characters lie in the same part; then
// the agent writes one character per step for `gen_len` steps.
// Observation: the last `context` token ids of the text so far (prompt, then
//   the written characters), oldest first, uint8. prompt_len >= context, so
//   the window is always full: no padding.
// Action: the id of the next character, in [0, vocab).
// Reward, by `reward_mode`:
//   TEXT_REWARD_NGRAM: log P(char | the order-1 characters before it) under
//     the smoothed character n-gram model of the head (NGram below), the
//     history being the prompt and the characters written so far. Always <= 0.
//   TEXT_REWARD_MATCH: 1 if the character equals the corpus continuation of
//     the prompt at that position, else 0 (the target is the corpus text, not
//     a continuation of what the agent wrote).
// Terminal: after `gen_len` steps. The episode has a fixed length because the
//   task is done, not because it was cut short, so it is a terminal: nothing
//   follows whose value a trainer should bootstrap. Truncation: never.
// Score: match: the fraction of characters that matched (the mean reward).
//   ngram: exp(mean log-prob per character), the geometric mean probability
//   of the written characters, i.e. 1 / their perplexity under the n-gram
//   model (the mean log-prob itself is episode_return / gen_len).
//
// Per step: one memmove of context-1 bytes to shift the window, one byte
// written, and (ngram) a walk of the n-gram automaton, usually one or two
// state records and one edge.
#include <stdlib.h>

#include "puffer.h"

#define TEXT_REWARD_NGRAM 0
#define TEXT_REWARD_MATCH 1
#define TEXT_MAX_VOCAB 256
#define TEXT_MAX_ORDER 10
#define NGRAM_DISCOUNT 0.75

// ---------------------------------------------------------------------------
// The n-gram model
//
// Interpolated absolute discounting (Ney, Essen and Kneser 1994) of order N,
// over the histories h of up to N-1 characters, with D = NGRAM_DISCOUNT:
//
//   P(c | h) = max(n(hc) - D, 0) / n(h) + D * T(h) / n(h) * P(c | h[1:])
//   P(c | empty) = (max(n(c) - D, 0) + D * T / V) / n
//   P(c | h) = P(c | h[1:]) when n(h) = 0 (h never seen followed by a character)
//
// where n(hc) counts the occurrences of the string hc in the training text,
// n(h) = sum over c of n(hc), T(h) the number of distinct c with n(hc) > 0
// (T = T(empty), the number of distinct characters of the text), n the
// text's length and V the vocabulary size. Every character, even one that
// never occurs, gets a probability of at least D * T / (V * n) > 0.
//
// Representation: a backoff automaton, sparse. Its states are the distinct
// substrings of the training text of length 0 to N-1; the state of a history
// is its longest suffix of at most N-1 characters that is such a substring.
// State h has an edge for each c that follows h somewhere in the text (the
// empty state for every c of the vocabulary), holding log P(c | h) and the
// next state (hc, or hc minus its first character at length N-1). For a c
// without an edge, P(c | h) = gamma(h) P(c | h[1:]), gamma(h) = D T(h) / n(h)
// (1 when n(h) = 0), and h[1:] is again a state. So one step from state s:
//
//   while s has no edge for c: logp += log gamma(s); s = backoff(s)
//   logp += edge.logp; s = edge.next
//
// One table for the whole process (the binding builds it once per (corpus,
// order) and every env points to it). A state is `stride` = 2 + V/64 words of
// 8 bytes (32 bytes for Tiny Shakespeare's 65 characters): first edge and
// backoff state; log gamma and, per bitmap word, the number of edges before
// it; and a bitmap of the characters that have an edge, so the edge of c is
// found with a popcount. An edge is 8 bytes. For the 1,003,854 characters of
// Tiny Shakespeare's head: order 4: 12,674 states and 61,212 edges, 0.9 MB,
// built in 0.03 s; order 6: 194,506 states and 459,128 edges, 9.9 MB, 0.07 s;
// order 8: 872,749 states and 1.43 M edges, 39 MB, 0.2 s; order 10: 2.1 M
// states and 2.9 M edges, 91 MB, 0.4 s. The build makes one pass over the
// text per order with a hash table of (state, character) pairs; its scratch
// memory is about 55 bytes per character of the text (55 MB for 1 MB).

typedef struct {
    float logp;     // log P(c | state)
    uint32_t next;  // the state after c
} NGramEdge;

typedef struct {
    int vocab;
    int order;
    int words;   // bitmap words per state: ceil(vocab / 64)
    int stride;  // words of 8 bytes per state: 2 + words
    uint32_t num_states;
    uint32_t num_edges;
    double discount;
    uint64_t* states;  // [num_states * stride]
    NGramEdge* edges;  // [num_edges]
} NGram;

// Popcount without needing the popcnt instruction (the build targets baseline
// x86-64, where __builtin_popcountll is a library call).
static inline uint32_t ngram_popcount(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

static inline float ngram_log_gamma(const uint64_t* record) {
    uint32_t bits = (uint32_t)record[1];
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

// log P(c | history) for the history whose state is *state; moves *state to
// the state of the history followed by c.
static inline float ngram_step(const NGram* m, uint32_t* state, int c) {
    const uint64_t* states = m->states;
    const int stride = m->stride;
    const int word = c >> 6;
    const int bit = c & 63;
    uint32_t s = *state;
    float logp = 0.0f;
    for (;;) {
        const uint64_t* record = states + (size_t)s * stride;
        uint64_t bits = record[2 + word];
        if ((bits >> bit) & 1) {
            uint32_t rank = (uint32_t)((record[1] >> (32 + 8 * word)) & 0xFF)
                + ngram_popcount(bits & ((1ull << bit) - 1));
            const NGramEdge* edge = &m->edges[(uint32_t)record[0] + rank];
            *state = edge->next;
            return logp + edge->logp;
        }
        logp += ngram_log_gamma(record);
        s = (uint32_t)(record[0] >> 32);
    }
}

void ngram_free(NGram* m) {
    if (m == NULL) return;
    free(m->states);
    free(m->edges);
    free(m);
}

// Build-time helpers: probabilities in double, from the edges placed so far.
typedef struct {
    double* prob;   // [num_edges] P(c | state) of each edge
    double* gamma;  // [num_states]
} NGramBuild;

static double ngram_prob(const NGram* m, const NGramBuild* b, uint32_t s, int c) {
    const int word = c >> 6, bit = c & 63;
    double scale = 1.0;
    for (;;) {
        const uint64_t* record = m->states + (size_t)s * m->stride;
        uint64_t bits = record[2 + word];
        if ((bits >> bit) & 1) {
            uint32_t rank = (uint32_t)((record[1] >> (32 + 8 * word)) & 0xFF)
                + ngram_popcount(bits & ((1ull << bit) - 1));
            return scale * b->prob[(uint32_t)record[0] + rank];
        }
        scale *= b->gamma[s];
        s = (uint32_t)(record[0] >> 32);
    }
}

static void* ngram_grow(void* p, size_t count, size_t size) {
    return realloc(p, count ? count * size : 1);
}

// The model of order `order` of text[0:n) (ids in [0, vocab)), or NULL when
// out of memory. Needs n >= 1, 1 <= vocab <= TEXT_MAX_VOCAB, 1 <= order <=
// TEXT_MAX_ORDER, 0 < discount < 1 and order * (n + 1) + vocab < 2^32 (the
// binding checks).
NGram* ngram_build(const unsigned char* text, long n, int vocab, int order, double discount) {
    NGram* m = calloc(1, sizeof(NGram));
    if (m == NULL) return NULL;
    m->vocab = vocab;
    m->order = order;
    m->words = (vocab + 63) / 64;
    m->stride = 2 + m->words;
    m->discount = discount;
    const int stride = m->stride;
    const double D = discount;

    // S[j]: the state of text[j:j+k] at level k (defined for j <= n-k).
    uint32_t* S = calloc((size_t)n + 1, sizeof(uint32_t));
    uint32_t* S_next = calloc((size_t)n + 1, sizeof(uint32_t));
    // The edges found at one level, in order of discovery.
    size_t max_edges = (size_t)n + (size_t)vocab;
    uint32_t* e_parent = malloc(max_edges * sizeof(uint32_t));
    uint32_t* e_count = malloc(max_edges * sizeof(uint32_t));
    uint32_t* e_next = malloc(max_edges * sizeof(uint32_t));
    long* e_pos = malloc(max_edges * sizeof(long));
    unsigned char* e_char = malloc(max_edges);
    size_t capacity = 16;
    while (capacity < 2 * ((size_t)n + 1)) capacity <<= 1;
    uint64_t* keys = malloc(capacity * sizeof(uint64_t));
    uint32_t* values = malloc(capacity * sizeof(uint32_t));
    NGramBuild b = {NULL, NULL};
    uint64_t* context_count = NULL;  // n(h) of the states of the current level
    int ok = S && S_next && e_parent && e_count && e_next && e_pos && e_char && keys && values;

    // The empty history: state 0, whose backoff is itself (never followed:
    // it has an edge for every character).
    uint32_t num_states = 1, level_start = 0, level_count = 1, num_edges = 0;
    if (ok) {
        m->states = calloc(stride, sizeof(uint64_t));
        b.gamma = calloc(1, sizeof(double));
        ok = m->states && b.gamma;
    }
    for (int k = 0; ok && k < order; k++) {
        // Edges of the states of level k: (S[j], text[j+k]) for j in [0, n-k).
        for (size_t i = 0; i < capacity; i++) keys[i] = UINT64_MAX;
        const int shift = 64 - __builtin_ctzll(capacity);
        const uint32_t next_start = num_states;  // the states of level k+1 (k+1 < order)
        size_t found = 0;
        for (long j = 0; j + k < n; j++) {
            uint64_t key = (uint64_t)S[j] * (uint64_t)vocab + text[j + k];
            size_t slot = (size_t)((key * 0x9E3779B97F4A7C15ull) >> shift);
            while (keys[slot] != UINT64_MAX && keys[slot] != key) slot = (slot + 1) & (capacity - 1);
            uint32_t e;
            if (keys[slot] == UINT64_MAX) {
                keys[slot] = key;
                e = (uint32_t)found++;
                values[slot] = e;
                e_parent[e] = S[j];
                e_char[e] = text[j + k];
                e_count[e] = 0;
                e_pos[e] = j;
            } else {
                e = values[slot];
            }
            e_count[e]++;
            S_next[j] = next_start + e;
        }
        const size_t observed = found;
        if (k == 0) {
            // The empty history has an edge for every character, seen or not.
            uint64_t seen[TEXT_MAX_VOCAB / 64] = {0};
            for (size_t e = 0; e < found; e++) seen[e_char[e] >> 6] |= 1ull << (e_char[e] & 63);
            for (int c = 0; c < vocab; c++) {
                if (!((seen[c >> 6] >> (c & 63)) & 1)) {
                    e_parent[found] = 0;
                    e_char[found] = (unsigned char)c;
                    e_count[found] = 0;
                    e_pos[found] = -1;
                    found++;
                }
            }
        }
        const int last = k + 1 == order;
        for (size_t e = 0; e < found; e++) {
            if (e_pos[e] < 0) e_next[e] = 0;                    // a character never seen: back to empty
            else if (!last) e_next[e] = next_start + (uint32_t)e;  // the state hc
            else e_next[e] = S[e_pos[e] + 1];                    // hc without its first character
        }

        // The states of level k+1 (one per edge seen at level k): records
        // zeroed, backoff = (hc)[1:] = the state of text[j+1:j+k+1].
        if (!last && observed) {
            size_t total = (size_t)num_states + observed;
            uint64_t* states = ngram_grow(m->states, total * stride, sizeof(uint64_t));
            double* gamma = ngram_grow(b.gamma, total, sizeof(double));
            if (states) m->states = states;
            if (gamma) b.gamma = gamma;
            if (!states || !gamma) { ok = 0; break; }
            memset(m->states + (size_t)num_states * stride, 0, observed * stride * sizeof(uint64_t));
            for (size_t e = 0; e < observed; e++) {
                uint64_t* record = m->states + (size_t)(next_start + e) * stride;
                record[0] = (uint64_t)S[e_pos[e] + 1] << 32;
            }
        }

        // Bitmaps, n(h), T(h), gamma and first edges of the states of level k.
        context_count = ngram_grow(context_count, level_count, sizeof(uint64_t));
        if (context_count == NULL) { ok = 0; break; }
        memset(context_count, 0, level_count * sizeof(uint64_t));
        for (size_t e = 0; e < found; e++) {
            uint64_t* record = m->states + (size_t)e_parent[e] * stride;
            record[2 + (e_char[e] >> 6)] |= 1ull << (e_char[e] & 63);
            context_count[e_parent[e] - level_start] += e_count[e];
        }
        uint32_t first = num_edges;
        for (uint32_t i = 0; i < level_count; i++) {
            uint32_t s = level_start + i;
            uint64_t* record = m->states + (size_t)s * stride;
            uint32_t types = 0, prefix = 0;
            for (int w = 0; w < m->words; w++) {
                prefix |= types << (8 * w);
                types += ngram_popcount(record[2 + w]);
            }
            double gamma = context_count[i] ? D * types / (double)context_count[i] : 1.0;
            if (k == 0) gamma = 1.0;  // unused: the empty history has every edge
            b.gamma[s] = gamma;
            float log_gamma = (float)log(gamma);
            uint32_t log_gamma_bits;
            memcpy(&log_gamma_bits, &log_gamma, sizeof log_gamma_bits);
            record[0] = (record[0] & 0xFFFFFFFF00000000ull) | first;
            record[1] = (uint64_t)log_gamma_bits | ((uint64_t)prefix << 32);
            first += types;
        }
        NGramEdge* edges = ngram_grow(m->edges, first, sizeof(NGramEdge));
        double* prob = ngram_grow(b.prob, first, sizeof(double));
        if (edges) m->edges = edges;
        if (prob) b.prob = prob;
        if (!edges || !prob) { ok = 0; break; }

        // Place the edges (by state, then character) with their probabilities;
        // the lower levels are complete, so P(c | h[1:]) is known.
        // Level 0: T and n of the empty history.
        double types0 = 0.0;
        if (k == 0) for (size_t e = 0; e < observed; e++) types0 += 1.0;
        for (size_t e = 0; e < found; e++) {
            uint32_t s = e_parent[e];
            const uint64_t* record = m->states + (size_t)s * stride;
            int c = e_char[e], word = c >> 6, bit = c & 63;
            uint32_t index = (uint32_t)record[0] + (uint32_t)((record[1] >> (32 + 8 * word)) & 0xFF)
                + ngram_popcount(record[2 + word] & ((1ull << bit) - 1));
            double total = (double)context_count[s - level_start];
            double p;
            if (k == 0) {
                double count = e_count[e] > 0 ? (double)e_count[e] - D : 0.0;
                p = (count + D * types0 / vocab) / total;
            } else {
                uint32_t backoff = (uint32_t)(record[0] >> 32);
                p = ((double)e_count[e] - D) / total + b.gamma[s] * ngram_prob(m, &b, backoff, c);
            }
            b.prob[index] = p;
            m->edges[index].logp = (float)log(p);
            m->edges[index].next = e_next[e];
        }
        num_edges = first;
        if (!last) {
            level_start = next_start;
            level_count = (uint32_t)observed;
            num_states += (uint32_t)observed;
            uint32_t* swap = S;
            S = S_next;
            S_next = swap;
        }
        if (!last && observed == 0) break;  // text shorter than the order: no longer histories
    }
    m->num_states = num_states;
    m->num_edges = num_edges;
    free(S);
    free(S_next);
    free(e_parent);
    free(e_count);
    free(e_next);
    free(e_pos);
    free(e_char);
    free(keys);
    free(values);
    free(context_count);
    free(b.prob);
    free(b.gamma);
    if (!ok) {
        ngram_free(m);
        return NULL;
    }
    return m;
}

// ---------------------------------------------------------------------------
// The env

typedef struct {
    unsigned char* observations;        // [context]
    int* actions;                       // [1]
    float* rewards;                     // [1]
    unsigned char* terminals;           // [1]
    unsigned char* truncations;         // [1]
    unsigned char* final_observations;  // [context]
    Log log;
    uint64_t rng;
    const unsigned char* corpus;  // the whole corpus, shared
    const NGram* ngram;           // shared; NULL in match mode
    int context;
    int prompt_len;
    int gen_len;
    int reward_mode;
    int history;        // characters of the prompt fed to the n-gram: min(order - 1, prompt_len)
    long prompt_start;  // prompts start uniformly in [prompt_start, prompt_start + prompt_span)
    long prompt_span;
    long target;        // corpus index of the continuation of the next character
    int step;
    uint32_t ngram_state;
    float episode_return;
} Text;

void c_reset(Text* env) {
    long offset = env->prompt_start
        + (long)(((uint64_t)rng_u32(&env->rng) * (uint64_t)env->prompt_span) >> 32);
    const unsigned char* prompt = env->corpus + offset;
    long end = (long)env->prompt_len;
    memcpy(env->observations, prompt + end - env->context, (size_t)env->context);
    env->target = offset + end;
    env->step = 0;
    env->episode_return = 0.0f;
    if (env->reward_mode == TEXT_REWARD_NGRAM) {
        uint32_t state = 0;
        for (long i = end - env->history; i < end; i++) ngram_step(env->ngram, &state, prompt[i]);
        env->ngram_state = state;
    }
}

void c_step(Text* env) {
    int action = env->actions[0];
    float reward;
    if (env->reward_mode == TEXT_REWARD_NGRAM) reward = ngram_step(env->ngram, &env->ngram_state, action);
    else reward = (float)(action == env->corpus[env->target]);
    env->target++;
    int step = env->step + 1;
    float episode_return = env->episode_return + reward;
    env->step = step;
    env->episode_return = episode_return;
    env->rewards[0] = reward;
    env->truncations[0] = 0;
    int context = env->context;
    if (step >= env->gen_len) {
        env->terminals[0] = 1;
        unsigned char* final = env->final_observations;
        memcpy(final, env->observations + 1, (size_t)(context - 1));
        final[context - 1] = (unsigned char)action;
        double mean = (double)episode_return / (double)step;
        double score = env->reward_mode == TEXT_REWARD_NGRAM ? exp(mean) : mean;
        log_episode(&env->log, episode_return, (double)step, score);
        c_reset(env);
        return;
    }
    env->terminals[0] = 0;
    unsigned char* obs = env->observations;
    memmove(obs, obs + 1, (size_t)(context - 1));
    obs[context - 1] = (unsigned char)action;
}

void c_close(Text* env) {
    (void)env;  // the corpus and the n-gram model belong to the binding
}
