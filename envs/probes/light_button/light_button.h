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
    int newest;  // index in `lit` of the light shown now
    int lit[LIGHT_BUTTON_MAX_DELAY + 1];  // ring buffer of the last delay+1 lights
} LightButton;

static void light_button_observe(LightButton* env) {
    int lit = rng_int(&env->rng, env->num_buttons);
    int num_buttons = env->num_buttons;
    int newest = env->newest == env->delay ? 0 : env->newest + 1;
    env->newest = newest;
    env->lit[newest] = lit;
    float* obs = env->observations;
    for (int i = 0; i < num_buttons; i++) obs[i] = 0.0f;
    obs[lit] = 1.0f;
    if (env->show_step) obs[num_buttons] = (float)env->step / (float)env->horizon;
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
        // The ring holds delay+1 lights; the oldest, shown `delay` steps ago,
        // sits just after the newest.
        int oldest = env->newest == env->delay ? 0 : env->newest + 1;
        target = env->lit[oldest];
        if (env->hard) target = (target + env->step) % env->num_buttons;
    }
    // Locals first, stores last: the output pointers may alias anything, so
    // each store through them would force the compiler to reload the struct.
    int correct = env->actions[0] == target;
    int step = env->step + 1;
    int terminal = !correct;
    int truncation = correct & (step >= env->horizon);
    float episode_return = env->episode_return + (float)correct;
    env->step = step;
    env->episode_return = episode_return;
    env->rewards[0] = (float)correct;
    env->terminals[0] = (unsigned char)terminal;
    env->truncations[0] = (unsigned char)truncation;
    if (terminal | truncation) {
        log_episode(&env->log, episode_return, (double)step, (double)truncation);
        c_reset(env);
        // The observation after the last step: lights are independent, so the
        // next episode's first light serves (one random draw, not two).
        float* final = env->final_observations;
        for (int i = 0; i < env->num_buttons; i++) final[i] = env->observations[i];
        if (env->show_step) final[env->num_buttons] = (float)step / (float)env->horizon;
        return;
    }
    light_button_observe(env);
}

void c_close(LightButton* env) {
    (void)env;
}
