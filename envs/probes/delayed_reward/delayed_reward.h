// delayed_reward: credit assignment across a delay.
//
// At step 0 the observation shows a random cue (one-hot of 2); the action taken
// then earns +1 if it matches the cue, but the reward is paid only at the last
// step, `delay` steps later. The episode ends as a terminal after delay + 1
// steps. Optimal return: 1 (random play: 0.5). Score: 1 if the episode was
// rewarded, else 0.
//
// Observation: [cue == 0, cue == 1, step / (delay + 1)]. While waiting (steps
// 1..delay) the cue entries are 0: the observation tells the step, never the
// cue nor the first action, and actions then do nothing. A memoryless critic
// therefore cannot know during the wait whether the reward will come; only the
// advantage of step 0 (the reward, discounted back through the value of the
// waiting states, e.g. by GAE) can credit the first action. That is what this
// probe checks: a trainer that truncates or mis-propagates its returns, or
// bootstraps across the terminal, learns nothing here.
#include "puffer.h"

typedef struct {
    float* observations;        // [3]
    int* actions;               // [1], 0 or 1
    float* rewards;             // [1]
    unsigned char* terminals;   // [1]
    unsigned char* truncations; // [1]
    float* final_observations;  // [3]
    Log log;
    uint64_t rng;
    int delay;
    int step;
    int cue;
    int correct;                // whether the action at step 0 matched the cue
} DelayedReward;

static void delayed_reward_observe(DelayedReward* env) {
    env->observations[0] = env->step == 0 && env->cue == 0 ? 1.0f : 0.0f;
    env->observations[1] = env->step == 0 && env->cue == 1 ? 1.0f : 0.0f;
    env->observations[2] = (float)env->step / (float)(env->delay + 1);
}

void c_reset(DelayedReward* env) {
    env->step = 0;
    env->cue = rng_int(&env->rng, 2);
    env->correct = 0;
    delayed_reward_observe(env);
}

void c_step(DelayedReward* env) {
    if (env->step == 0) env->correct = env->actions[0] == env->cue;
    env->step += 1;
    int done = env->step > env->delay;
    env->rewards[0] = done && env->correct ? 1.0f : 0.0f;
    env->terminals[0] = done;
    env->truncations[0] = 0;
    delayed_reward_observe(env);
    if (done) {
        memcpy(env->final_observations, env->observations, 3 * sizeof(float));
        log_episode(&env->log, env->rewards[0], (double)env->step, env->correct ? 1.0 : 0.0);
        c_reset(env);
    }
}

void c_close(DelayedReward* env) {
    (void)env;
}
