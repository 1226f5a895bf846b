// cartpole: balance a pole on a cart, with the dynamics, thresholds, reward
// and time limit of Gymnasium's CartPole-v1.
//
// Observation: [x, x_dot, theta, theta_dot] (the full state, float32).
// Action: 0 pushes the cart left, 1 pushes it right (force 10 N).
// Reward: 1 every step, the terminating step included.
// Terminal: |x| > 2.4 or |theta| > 12 degrees after the step.
// Truncation: after 500 steps (a terminal on the 500th step wins).
// Reset: each state variable uniform in [-0.05, 0.05).
// Score: episode length / 500, so 1.0 means the pole stayed up to the limit.
//
// The state is kept in float and stepped with float math (explicit Euler, as
// Gymnasium's default integrator), so it always equals the float32
// observation: nothing is lost when the observation is written, and an
// observation fed back in (e.g. as Gymnasium's state) reproduces the step.
// The thresholds are compared in double against Gymnasium's double constants,
// so termination is decided exactly as Gymnasium would decide it for the
// observed state.
#include "puffer.h"

#define CARTPOLE_GRAVITY 9.8f
#define CARTPOLE_MASSCART 1.0f
#define CARTPOLE_MASSPOLE 0.1f
#define CARTPOLE_TOTAL_MASS (CARTPOLE_MASSPOLE + CARTPOLE_MASSCART)
#define CARTPOLE_LENGTH 0.5f  // half the pole's length
#define CARTPOLE_POLEMASS_LENGTH (CARTPOLE_MASSPOLE * CARTPOLE_LENGTH)
#define CARTPOLE_FORCE_MAG 10.0f
#define CARTPOLE_TAU 0.02f
#define CARTPOLE_X_THRESHOLD 2.4                                   // double, as Gymnasium's
#define CARTPOLE_THETA_THRESHOLD (12.0 * 2.0 * 3.141592653589793 / 360.0)  // radians, double
#define CARTPOLE_MAX_STEPS 500

typedef struct {
    float* observations;        // [4]: x, x_dot, theta, theta_dot
    int* actions;               // [1]
    float* rewards;             // [1]
    unsigned char* terminals;   // [1]
    unsigned char* truncations; // [1]
    float* final_observations;  // [4]
    Log log;
    uint64_t rng;
    float x;
    float x_dot;
    float theta;
    float theta_dot;
    int tick;  // steps taken in this episode
} CartPole;

static inline void cartpole_observe(const CartPole* env, float* obs) {
    obs[0] = env->x;
    obs[1] = env->x_dot;
    obs[2] = env->theta;
    obs[3] = env->theta_dot;
}

void c_reset(CartPole* env) {
    env->x = rng_uniform(&env->rng, -0.05f, 0.05f);
    env->x_dot = rng_uniform(&env->rng, -0.05f, 0.05f);
    env->theta = rng_uniform(&env->rng, -0.05f, 0.05f);
    env->theta_dot = rng_uniform(&env->rng, -0.05f, 0.05f);
    env->tick = 0;
    cartpole_observe(env, env->observations);
}

void c_step(CartPole* env) {
    // Branch-free force: action 1 -> +10 N, action 0 -> -10 N (the binding
    // checks that every action is 0 or 1 before any env steps).
    float force = (float)(2 * env->actions[0] - 1) * CARTPOLE_FORCE_MAG;
    float x = env->x, x_dot = env->x_dot, theta = env->theta, theta_dot = env->theta_dot;
    float costheta = cosf(theta);  // with sinf, compiled to one sincosf call
    float sintheta = sinf(theta);
    // Gymnasium's equations, with the divisions by the constant total mass
    // turned into multiplications (a division costs several multiplies; the
    // results differ from Gymnasium's float64 ones by float rounding only).
    const float inv_total_mass = 1.0f / CARTPOLE_TOTAL_MASS;
    float temp = (force + CARTPOLE_POLEMASS_LENGTH * theta_dot * theta_dot * sintheta) * inv_total_mass;
    float thetaacc = (CARTPOLE_GRAVITY * sintheta - costheta * temp)
        / (CARTPOLE_LENGTH * (4.0f / 3.0f - CARTPOLE_MASSPOLE * costheta * costheta * inv_total_mass));
    float xacc = temp - CARTPOLE_POLEMASS_LENGTH * thetaacc * costheta * inv_total_mass;
    // Explicit Euler: positions advance with the old velocities.
    x = x + CARTPOLE_TAU * x_dot;
    x_dot = x_dot + CARTPOLE_TAU * xacc;
    theta = theta + CARTPOLE_TAU * theta_dot;
    theta_dot = theta_dot + CARTPOLE_TAU * thetaacc;
    int tick = env->tick + 1;

    // Gymnasium's comparisons (strict, against its double thresholds), with
    // | rather than || so that they compile without branches.
    int terminal = ((double)x < -CARTPOLE_X_THRESHOLD) | ((double)x > CARTPOLE_X_THRESHOLD)
        | ((double)theta < -CARTPOLE_THETA_THRESHOLD) | ((double)theta > CARTPOLE_THETA_THRESHOLD);
    int truncation = !terminal & (tick >= CARTPOLE_MAX_STEPS);
    env->rewards[0] = 1.0f;
    env->terminals[0] = (unsigned char)terminal;
    env->truncations[0] = (unsigned char)truncation;
    env->x = x;
    env->x_dot = x_dot;
    env->theta = theta;
    env->theta_dot = theta_dot;
    env->tick = tick;
    if (terminal | truncation) {
        float* final = env->final_observations;
        final[0] = x;
        final[1] = x_dot;
        final[2] = theta;
        final[3] = theta_dot;
        log_episode(&env->log, (double)tick, (double)tick, (double)tick / (double)CARTPOLE_MAX_STEPS);
        c_reset(env);
        return;
    }
    float* obs = env->observations;
    obs[0] = x;
    obs[1] = x_dot;
    obs[2] = theta;
    obs[3] = theta_dot;
}

void c_close(CartPole* env) {
    (void)env;
}
