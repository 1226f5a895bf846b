// continuous_target: the first probe for continuous (Box) actions.
//
// Each step the observation is a fresh random target in [-1, 1); the action,
// one float in [-1, 1], earns 1 - |action - target|, so reward lies in
// [-1, 1] and is 1 exactly when the action hits the target. After `horizon`
// steps the episode is truncated. Optimal return: `horizon` (uniform random
// actions get 1/3 a step). Score: the fraction of the episode's steps whose
// action lands within 0.1 of the target (1.0 for the optimal policy).
//
// A Gaussian policy samples outside the bounds, so finite out-of-range actions
// are clipped to [-1, 1] here rather than rejected; NaN and inf are rejected
// by the shared validation before any env steps (vecenv.pxi).
// It probes that a trainer wires up a continuous action head, its log-probs
// and its action bounds; since each step is independent, the value is just
// the expected per-step reward times the steps left.
#include "puffer.h"

typedef struct {
    float* observations;        // [1]: the target
    float* actions;             // [1]
    float* rewards;             // [1]
    unsigned char* terminals;   // [1]
    unsigned char* truncations; // [1]
    float* final_observations;  // [1]
    Log log;
    uint64_t rng;
    int horizon;
    int step;
    int hits;                   // steps within 0.1 of the target
    double episode_return;
} ContinuousTarget;

static void continuous_target_observe(ContinuousTarget* env) {
    env->observations[0] = rng_uniform(&env->rng, -1.0f, 1.0f);
}

void c_reset(ContinuousTarget* env) {
    env->step = 0;
    env->hits = 0;
    env->episode_return = 0.0;
    continuous_target_observe(env);
}

void c_step(ContinuousTarget* env) {
    float action = fminf(fmaxf(env->actions[0], -1.0f), 1.0f);
    float error = fabsf(action - env->observations[0]);
    env->rewards[0] = 1.0f - error;
    env->episode_return += env->rewards[0];
    env->hits += error <= 0.1f;
    env->step += 1;
    env->terminals[0] = 0;
    env->truncations[0] = env->step >= env->horizon;
    continuous_target_observe(env);  // the next target
    if (env->truncations[0]) {
        env->final_observations[0] = env->observations[0];
        log_episode(&env->log, env->episode_return, (double)env->step, (double)env->hits / env->step);
        c_reset(env);
    }
}

void c_close(ContinuousTarget* env) {
    (void)env;
}
