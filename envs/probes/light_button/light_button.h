// light_button: "press the light-up button", the first probe for a trainer.
//
// Each step one of `num_buttons` buttons lights up at random; the observation
// is its one-hot. Pressing the right button gives +1; any other press ends the
// episode at once (terminal, reward 0). After `horizon` steps the episode is
// truncated, so the optimal return is `horizon` and a trainer must bootstrap
// the value there rather than treat it as an end.
//
// Variants, each with the same optimal return:
//   hard:      the right button is (lit + step) % num_buttons, the observation
//              unchanged, so only a policy that tracks time can solve it.
//   show_step: adds step / horizon to the observation, so that a memoryless
//              policy can solve the hard variant.
//   delay=k:   the press must match the light shown k steps earlier (a memory
//              probe); during the first k steps there is nothing to recall and
//              every press is right.
// Score: the fraction of episodes that reach the horizon without a mistake.
#include "puffer.h"

#define LIGHT_BUTTON_MAX_DELAY 64

typedef struct {
    float* observations;        // [num_buttons (+1 with show_step)]
    int* actions;               // [1]
    float* rewards;             // [1]
    unsigned char* terminals;   // [1]
    unsigned char* truncations; // [1]
    float* final_observations;  // like observations
    Log log;
    uint64_t rng;
    int num_buttons;
    int horizon;
    int hard;
    int show_step;
    int delay;
    int step;
    float episode_return;
    int lit[LIGHT_BUTTON_MAX_DELAY + 1];  // ring buffer of the last delay+1 lights
} LightButton;

static inline int light_button_obs_size(const LightButton* env) {
    return env->num_buttons + (env->show_step ? 1 : 0);
}

static void light_button_observe(LightButton* env) {
    int lit = rng_int(&env->rng, env->num_buttons);
    env->lit[env->step % (env->delay + 1)] = lit;
    memset(env->observations, 0, (size_t)env->num_buttons * sizeof(float));
    env->observations[lit] = 1.0f;
    if (env->show_step) env->observations[env->num_buttons] = (float)env->step / (float)env->horizon;
}

void c_reset(LightButton* env) {
    env->step = 0;
    env->episode_return = 0.0f;
    light_button_observe(env);
}

void c_step(LightButton* env) {
    int target;
    if (env->step < env->delay) {
        target = env->actions[0];  // nothing to recall yet: any press is right
    } else {
        target = env->lit[(env->step - env->delay) % (env->delay + 1)];
        if (env->hard) target = (target + env->step) % env->num_buttons;
    }
    int correct = env->actions[0] == target;
    env->rewards[0] = correct ? 1.0f : 0.0f;
    env->episode_return += env->rewards[0];
    env->step += 1;
    env->terminals[0] = !correct;
    env->truncations[0] = correct && env->step >= env->horizon;
    if (env->terminals[0] || env->truncations[0]) {
        // The observation of the step that ended the episode: the button that
        // would have lit next, as if the episode went on.
        light_button_observe(env);
        memcpy(env->final_observations, env->observations, (size_t)light_button_obs_size(env) * sizeof(float));
        log_episode(&env->log, env->episode_return, (float)env->step, env->truncations[0] ? 1.0f : 0.0f);
        c_reset(env);
        return;
    }
    light_button_observe(env);
}

void c_close(LightButton* env) {
    (void)env;
}
