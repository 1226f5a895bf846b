// constant_reward: the simplest value-learning probe.
//
// One action (Discrete(1)), reward +1 every step, and the episode ends as a
// terminal after `length` steps, so every episode returns exactly `length`:
// the optimal return, reached by every policy (score 1.0 for every episode).
// Nothing depends on the action, so this probes the critic alone: the value
// of the start state must come out as `length` undiscounted, or
// (1 - gamma^length) / (1 - gamma) discounted (1 for the default length 1).
//
// The observation is the fraction of the episode still to come,
// (length - step) / length: 1.0 at every start state, the constant 1.0 for
// the default length 1, and 0.0 in final_observations. Without it the steps of
// a longer episode would all look alike and their values could not be told
// apart; with it the undiscounted value is simply length * observation.
#include "puffer.h"

typedef struct {
    float* observations;        // [1]: steps left / length
    int* actions;               // [1], always 0
    float* rewards;             // [1]
    unsigned char* terminals;   // [1]
    unsigned char* truncations; // [1]
    float* final_observations;  // [1]
    Log log;
    uint64_t rng;               // unused: the env is deterministic
    int length;
    int step;
} ConstantReward;

static void constant_reward_observe(ConstantReward* env) {
    env->observations[0] = (float)(env->length - env->step) / (float)env->length;
}

void c_reset(ConstantReward* env) {
    env->step = 0;
    constant_reward_observe(env);
}

void c_step(ConstantReward* env) {
    env->rewards[0] = 1.0f;
    env->step += 1;
    env->terminals[0] = env->step >= env->length;
    env->truncations[0] = 0;
    if (env->terminals[0]) {
        constant_reward_observe(env);  // 0.0: nothing left
        env->final_observations[0] = env->observations[0];
        log_episode(&env->log, (double)env->length, (double)env->length, 1.0);
        c_reset(env);
        return;
    }
    constant_reward_observe(env);
}

void c_close(ConstantReward* env) {
    (void)env;
}
