// puffer.h: what every environment header shares.
//
// An environment is a struct that holds its own state plus pointers into
// buffers owned by the caller (numpy arrays): observations, actions, rewards,
// terminals, truncations and final_observations. `c_reset` writes the first
// observation; `c_step` reads the action, writes reward/terminal/truncation and
// the next observation. When an episode ends inside `c_step`, the env copies
// its last observation to `final_observations`, adds the episode to its `log`
// and resets itself, so the observation it leaves is the next episode's first.
//
// Randomness comes only from the env's own `rng` state, seeded by the binding,
// so the same seed and actions give bit-identical trajectories.
#ifndef PUFFER_H
#define PUFFER_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// Episode statistics, summed in C over finished episodes and read (then
// cleared) by Python a few times a second.
// Doubles, since a sum over millions of episodes outgrows a float's precision.
typedef struct {
    double episode_return;
    double episode_length;
    double score;  // env-specific measure of success, in [0, 1] where it can be
    double n;      // number of episodes summed
} Log;

static inline void log_episode(Log* log, double episode_return, double episode_length, double score) {
    log->episode_return += episode_return;
    log->episode_length += episode_length;
    log->score += score;
    log->n += 1.0;
}

// splitmix64: turns (seed, env index) into well-mixed, independent states.
static inline uint64_t rng_seed(uint64_t seed, uint64_t index) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + index + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    return z ? z : 1;  // xorshift state must not be zero
}

// xorshift64*: a few cycles per number, good enough for environment noise.
static inline uint32_t rng_u32(uint64_t* state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

// Uniform integer in [0, n), by multiply-shift (no modulo bias worth noting).
static inline int rng_int(uint64_t* state, int n) {
    return (int)(((uint64_t)rng_u32(state) * (uint64_t)n) >> 32);
}

// Uniform float in [0, 1).
static inline float rng_float(uint64_t* state) {
    return (float)(rng_u32(state) >> 8) * (1.0f / 16777216.0f);
}

// Uniform float in [low, high).
static inline float rng_uniform(uint64_t* state, float low, float high) {
    return low + (high - low) * rng_float(state);
}

// Action validation, called by the binding over the whole actions buffer
// before any env steps, so that bad input changes no state. Returns the index
// of the first invalid entry, or -1 when all are valid.
static inline long first_invalid_discrete(const int* actions, long count, int num_actions) {
    for (long i = 0; i < count; i++) {
        if ((unsigned)actions[i] >= (unsigned)num_actions) return i;
    }
    return -1;
}

static inline long first_invalid_box(const float* actions, long count, int unused) {
    (void)unused;
    for (long i = 0; i < count; i++) {
        if (!isfinite(actions[i])) return i;
    }
    return -1;
}

// One name for both, chosen by the action type, so the shared binding code
// (vecenv.pxi) works for discrete and continuous envs alike.
#define first_invalid_action(actions, count, num_actions) \
    _Generic((actions), int*: first_invalid_discrete, float*: first_invalid_box)(actions, count, num_actions)

#endif
