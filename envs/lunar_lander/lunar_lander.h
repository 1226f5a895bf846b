// lunar_lander: Gymnasium's LunarLander-v3 on a small rigid-body model in C
// (no Box2D): land between the flags.
//
// Observation (8 floats, Gymnasium's scaling): x and y of the hull relative
// to the helipad, its velocity, angle and angular velocity, and two
// leg-contact flags:
//   [(x - W/2) / (W/2), (y - (H/4 + LEG_DOWN/SCALE)) / (H/2),
//    vx (W/2) / FPS, vy (H/2) / FPS, angle, 20 omega / FPS, leg0, leg1]
// with W = 20 and H = 40/3 (viewport in metres). Each is clipped to
// Gymnasium's observation space (|x|, |y| <= 2.5, velocities <= 10, angle
// <= 2 pi); the reward uses the values before clipping.
// Actions: discrete 0 nothing, 1 left engine, 2 main engine, 3 right engine;
// or (continuous) two floats clipped to [-1, 1]: main engine off below 0,
// else 50%..100% throttle; lateral engines fire when |a1| > 0.5, left for
// a1 < 0, right for a1 > 0, at 50%..100%.
// Reward: the change of the shaping -100 |pos| - 100 |vel| - 100 |angle| +
// 10 per leg on the ground, minus 0.3 per frame of full main engine and 0.03
// of side engine; -100 (instead) on a crash (the hull touches the ground) or
// on leaving the screen (|x| >= 1); +100 (instead) when the lander comes to
// rest (Box2D's sleep: hull and legs slower than 0.01 m/s and 2 deg/s for
// half a second).
// Truncation: after 1000 steps (a terminal on the 1000th step wins).
// Reset: random terrain of 11 points with a flat helipad in the middle, the
// lander at the top centre, pushed by a random force as Gymnasium's.
// Score: 1 if the episode ended with the lander at rest (the +100), else 0
// (crashed, flew off or truncated). Landing outside the pad also counts.
//
// The physics (details at ll_physics and ll_contact_solve): in the air the
// hull and legs move as one rigid body with the mass, inertia and centre of
// mass of Gymnasium's three Box2D bodies; engine impulses, their dispersion
// and points of application are Gymnasium's, so free flight follows Box2D's
// to float rounding. Each leg is a massless lever on a pivot at the hull's
// origin, held by a motor of Box2D's torque (40 N m) and speed (0.3 rad/s)
// between Box2D's joint limits: a hard landing folds the legs against the
// motor's torque and lets the hull hit the ground. Leg corners meet the
// piecewise-linear terrain through speculative contacts with Coulomb
// friction (sequential impulses, warm started), with Box2D's contact
// distances, contact timing and sleep rule. The reset is Gymnasium's state
// after its reset (fitted to Box2D's as a function of the initial push).
// Randomness comes from the env's own rng (terrain, push, dispersion).
#include "puffer.h"

#define LL_FPS 50.0f
#define LL_DT (1.0f / 50.0f)
#define LL_SCALE 30.0f
#define LL_W (600.0f / 30.0f)              // 20 m
#define LL_H (400.0f / 30.0f)              // 13.33 m
#define LL_CHUNKS 11
#define LL_SEGMENTS (LL_CHUNKS - 1)
#define LL_CHUNK_W (LL_W / (LL_CHUNKS - 1))  // 2 m
#define LL_HELIPAD_Y (LL_H / 4.0f)
#define LL_LEG_DOWN (18.0f / 30.0f)
#define LL_GRAVITY (-10.0f)
#define LL_MAIN_ENGINE_POWER 13.0f
#define LL_SIDE_ENGINE_POWER 0.6f
#define LL_INITIAL_RANDOM 1000.0f
#define LL_MAIN_ENGINE_Y (4.0f / 30.0f)
#define LL_SIDE_ENGINE_AWAY (12.0f / 30.0f)
#define LL_SIDE_ENGINE_HEIGHT (14.0f / 30.0f)
#define LL_SIDE_ENGINE_X (17.0f / 30.0f)   // Gymnasium's "17" (see its notes)
#define LL_MAX_STEPS 1000

// Mass properties of Gymnasium's bodies (hull polygon at density 5, two 4 x 16
// px legs at density 1), with the legs at rest on their lower limit; computed
// as Box2D does. Offsets are along the hull's up axis from its origin.
#define LL_MASS 4.9588889f         // hull 4.8166667 + 2 legs 0.0711111
#define LL_INV_MASS (1.0f / LL_MASS)
#define LL_HULL_COM 0.1013072f     // hull's centre of mass (its velocity is observed)
#define LL_COM 0.0887931f          // centre of mass of hull and legs
#define LL_INERTIA 0.9122097f      // all three about LL_COM (legs locked)
// Legs: Box2D's revolute joints. A leg's angle d to the hull is mirrored so
// that both legs fold outward-up as d grows: Box2D's joint limits [0.4, 0.9]
// less the 0.05 reference angle of the initial pose.
#define LL_LEG_AWAY (20.0f / 30.0f)
#define LL_LEG_W (2.0f / 30.0f)            // half width
#define LL_LEG_H (8.0f / 30.0f)            // half height
#define LL_LEG_LOWER 0.35f
#define LL_LEG_UPPER 0.85f
#define LL_LEG_RESET 0.492f               // where Box2D's reset leaves them
#define LL_MOTOR_SPEED 0.3f                // toward the lower limit
#define LL_LEG_MIN (LL_LEG_LOWER - LL_MOTOR_SPEED * LL_DT)  // past the limit: see ll_held_rate
#define LL_MOTOR_TORQUE 40.0f
#define LL_FRICTION 0.14142136f            // sqrt(leg 0.2 * ground 0.1), Box2D's mix
// Box2D keeps polygons 0.015 m apart at rest (skins of 0.01 + 0.01, less
// linear slop 0.005) and calls them touching under 0.02 m.
#define LL_SKIN 0.015f
#define LL_TOUCH 0.02f
#define LL_TOI_SLOP 0.01f                 // its time of impact stops them 0.005 m apart
#define LL_REACH 1.14f                     // farthest point of hull or legs from the origin
#define LL_ITERATIONS 10
#define LL_SLEEP_LINEAR 0.01f
#define LL_SLEEP_ANGULAR (2.0f / 180.0f * 3.14159265f)
#define LL_SLEEP_TIME 0.5f
#define LL_CORNERS 8                       // 4 per leg

typedef struct {
    float* observations;        // [8]
    int* actions;               // [1] discrete; [2] floats (read through a float*) when continuous
    float* rewards;             // [1]
    unsigned char* terminals;   // [1]
    unsigned char* truncations; // [1]
    float* final_observations;  // [8]
    Log log;
    uint64_t rng;
    int continuous;
    // Terrain: heights at x = 2 i, i < 11, and per segment its slope and the
    // y component of its unit normal.
    float ground[LL_CHUNKS];
    float slope[LL_SEGMENTS];
    float normal_y[LL_SEGMENTS];
    // Body: centre of mass of hull and legs, its velocity, the hull's angle
    // and angular velocity; each leg's (mirrored) joint angle and its rate.
    float cx, cy, vx, vy, angle, omega;
    float leg[2], leg_rate[2];
    // Warm-start impulses of the contact solver, per leg corner.
    float normal_impulse[LL_CORNERS], friction_impulse[LL_CORNERS];
    float sleep_time;
    float prev_shaping;
    float leg_contact[2];       // 1.0 while the leg touches the ground
    int crashed;                // the hull touched the ground this step
    int asleep;                 // at rest this step
    int tick;
    double episode_return;
} LunarLander;

// Hull polygon in metres, counter-clockwise, relative to the hull's origin.
static const float LL_HULL[6][2] = {
    {-14.0f / 30, 17.0f / 30}, {-17.0f / 30, 0.0f}, {-17.0f / 30, -10.0f / 30},
    {17.0f / 30, -10.0f / 30}, {17.0f / 30, 0.0f}, {14.0f / 30, 17.0f / 30}};

// Leg corners relative to the pivot in the frame of a leg (the +x leg) that
// has not turned: the leg's centre sits LEG_AWAY out and LEG_DOWN down.
static const float LL_LEG_CORNER[4][2] = {
    {LL_LEG_AWAY - LL_LEG_W, -LL_LEG_DOWN - LL_LEG_H}, {LL_LEG_AWAY + LL_LEG_W, -LL_LEG_DOWN - LL_LEG_H},
    {LL_LEG_AWAY + LL_LEG_W, -LL_LEG_DOWN + LL_LEG_H}, {LL_LEG_AWAY - LL_LEG_W, -LL_LEG_DOWN + LL_LEG_H}};

static inline float ll_clamp(float x, float lo, float hi) {
    return fminf(fmaxf(x, lo), hi);
}

// A held leg's rate: its motor turns it back at full speed until it reaches
// the lower limit. Box2D's limit only holds a leg that is on it as the step
// begins, so the leg stops up to one step's turn past it (the limit's slop
// lets it stay there), its feet hanging up to 4 mm lower.
static inline float ll_held_rate(float leg) {
    return leg > LL_LEG_LOWER ? -LL_MOTOR_SPEED : 0.0f;
}

// Terrain segment under x (the end segments extend past the screen).
static inline int ll_segment(float x) {
    return (int)ll_clamp(x * (1.0f / LL_CHUNK_W), 0.0f, (float)(LL_SEGMENTS - 1));
}

// Height of point (x, y) above the terrain, along the segment's normal.
static inline float ll_gap(const LunarLander* env, int i, float x, float y) {
    float ground = env->ground[i] + env->slope[i] * (x - LL_CHUNK_W * (float)i);
    return (y - ground) * env->normal_y[i];
}

void ll_set_terrain(LunarLander* env, const float* ground) {
    for (int i = 0; i < LL_CHUNKS; i++) env->ground[i] = ground[i];
    for (int i = 0; i < LL_SEGMENTS; i++) {
        float m = (ground[i + 1] - ground[i]) * (1.0f / LL_CHUNK_W);
        env->slope[i] = m;
        env->normal_y[i] = 1.0f / sqrtf(1.0f + m * m);
    }
}

// Gymnasium's terrain: 12 heights uniform in [0, H/2), the five around the
// middle set to H/4, smoothed over three neighbours with weight 0.33 (the
// first point's left neighbour is the 12th height: Python's index -1).
static void ll_make_terrain(LunarLander* env) {
    float height[LL_CHUNKS + 1], smooth[LL_CHUNKS];
    for (int i = 0; i < LL_CHUNKS + 1; i++) height[i] = rng_uniform(&env->rng, 0.0f, LL_H / 2.0f);
    for (int i = LL_CHUNKS / 2 - 2; i <= LL_CHUNKS / 2 + 2; i++) height[i] = LL_HELIPAD_Y;
    for (int i = 0; i < LL_CHUNKS; i++) {
        float left = height[i == 0 ? LL_CHUNKS : i - 1];
        smooth[i] = 0.33f * (left + height[i] + height[i + 1]);
    }
    ll_set_terrain(env, smooth);
}

// The state in Gymnasium's terms: the hull's origin, the velocity of the
// hull's centre of mass, angle, angular velocity, leg joint angles and rates.
void ll_set_body(LunarLander* env, float x, float y, float vx, float vy, float angle, float omega,
                 float leg0, float leg1, float leg_rate0, float leg_rate1) {
    float sn = sinf(angle), cs = cosf(angle);
    const float e = LL_HULL_COM - LL_COM;  // hull's centre above the common one
    env->cx = x - sn * LL_COM;
    env->cy = y + cs * LL_COM;
    env->vx = vx + omega * e * cs;
    env->vy = vy + omega * e * sn;
    env->angle = angle;
    env->omega = omega;
    env->leg[0] = leg0;
    env->leg[1] = leg1;
    env->leg_rate[0] = leg_rate0;
    env->leg_rate[1] = leg_rate1;
}

void ll_get_body(const LunarLander* env, float* out) {
    float sn = sinf(env->angle), cs = cosf(env->angle);
    const float e = LL_HULL_COM - LL_COM;
    out[0] = env->cx + sn * LL_COM;
    out[1] = env->cy - cs * LL_COM;
    out[2] = env->vx - env->omega * e * cs;
    out[3] = env->vy - env->omega * e * sn;
    out[4] = env->angle;
    out[5] = env->omega;
    out[6] = env->leg[0];
    out[7] = env->leg[1];
    out[8] = env->leg_rate[0];
    out[9] = env->leg_rate[1];
}

// Gymnasium's state vector (unclipped) and the shaping it earns.
static inline float ll_state(const LunarLander* env, float* s) {
    float sn = sinf(env->angle), cs = cosf(env->angle);
    const float e = LL_HULL_COM - LL_COM;
    float x = env->cx + sn * LL_COM, y = env->cy - cs * LL_COM;
    float vx = env->vx - env->omega * e * cs, vy = env->vy - env->omega * e * sn;
    float omega = env->omega;
    if (env->asleep) vx = vy = omega = 0.0f;  // Box2D zeroes a body it puts to sleep
    s[0] = (x - LL_W / 2.0f) * (1.0f / (LL_W / 2.0f));
    s[1] = (y - (LL_HELIPAD_Y + LL_LEG_DOWN)) * (1.0f / (LL_H / 2.0f));
    s[2] = vx * ((LL_W / 2.0f) / LL_FPS);
    s[3] = vy * ((LL_H / 2.0f) / LL_FPS);
    s[4] = env->angle;
    s[5] = omega * (20.0f / LL_FPS);
    s[6] = env->leg_contact[0];
    s[7] = env->leg_contact[1];
    return -100.0f * sqrtf(s[0] * s[0] + s[1] * s[1]) - 100.0f * sqrtf(s[2] * s[2] + s[3] * s[3])
        - 100.0f * fabsf(s[4]) + 10.0f * s[6] + 10.0f * s[7];
}

// Writes the observation: the state clipped to Gymnasium's observation space.
static inline void ll_write_obs(const float* s, float* obs) {
    static const float high[8] = {2.5f, 2.5f, 10.0f, 10.0f, 6.2831855f, 10.0f, 1.0f, 1.0f};
    for (int i = 0; i < 8; i++) obs[i] = ll_clamp(s[i], -high[i], high[i]);
}

// Contact solve of one step with the ground near. The legs are massless
// levers on their pivots (the hull's origin): a leg is either held by its
// joint, turning at the rate its motor sets (back toward the lower limit at
// 0.3 rad/s, or not at all on the limit), so that its corners move with the
// body; or, when holding it would take more than the motor's torque, it
// folds: its lowest corner then pushes on the ground with just the impulse
// whose moment about the pivot is the motor's (friction included) and stays
// on it. Held legs' corners get speculative contacts (normal speed >= -gap /
// dt, so a corner stops at the ground within the step) with Coulomb
// friction, solved by sequential impulses with warm starting on the one
// rigid body; a leg found to need more than the motor can give is switched
// to folding (the neediest first) and the solve run again. A leg that was
// not yet touching as the step began does not push (Box2D meets it in its
// time-of-impact pass, which stops the leg but leaves the hull alone): it
// folds just enough to stay above the ground. A corner found inside the
// ground is pushed out by moving the body, not by speeding it up (Box2D's
// position correction). Updates the body's velocity (and position, for
// that), the legs' rates and their contact flags.
static void ll_contact_solve(LunarLander* env, float sn, float cs, float* vx_, float* vy_, float* w_,
                             float* rate) {
    const float inv_i = 1.0f / LL_INERTIA;
    const float max_torque = LL_MOTOR_TORQUE * LL_DT;
    // Pivot (the hull's origin) relative to the centre of mass.
    float pivot_x = sn * LL_COM, pivot_y = -cs * LL_COM;
    float origin_x = env->cx + pivot_x, origin_y = env->cy + pivot_y;
    float held_rate[2];
    for (int k = 0; k < 2; k++) held_rate[k] = ll_held_rate(env->leg[k]);

    // Candidate contacts: corners that may reach the ground this step.
    int n = 0;
    int leg_of[LL_CORNERS], slot[LL_CORNERS];
    // Legs not yet touching when the step starts: Box2D meets them in its
    // time-of-impact pass, which stops the leg at the ground but leaves the
    // hull's velocity alone (the joints are not in that solve): such a leg
    // folds to stay on the ground and pushes on nothing this step.
    int arriving[2] = {1, 1};
    int foldable[2] = {1, 1};  // folding can keep every corner off the ground
    int touching[2] = {0, 0};  // within the touching distance as the step begins
    float nx[LL_CORNERS], ny[LL_CORNERS], an[LL_CORNERS], at[LL_CORNERS], rn[LL_CORNERS], rt[LL_CORNERS];
    float mass_n[LL_CORNERS], mass_t[LL_CORNERS], gap[LL_CORNERS], en[LL_CORNERS], et[LL_CORNERS];
    float vx0 = *vx_, vy0 = *vy_, w0 = *w_;
    for (int k = 0; k < 2; k++) {
        float side = k == 0 ? 1.0f : -1.0f;  // leg 0 on the +x side
        float ls = sinf(env->leg[k]), lc = cosf(env->leg[k]);
        for (int j = 0; j < 4; j++) {
            int c = 4 * k + j;
            // Corner in the hull's frame (leg turned by its angle, mirrored
            // for leg 1), then in the world relative to the pivot.
            float px = LL_LEG_CORNER[j][0], py = LL_LEG_CORNER[j][1];
            float hx = side * (px * lc - py * ls), hy = px * ls + py * lc;
            float rx = hx * cs - hy * sn, ry = hx * sn + hy * cs;
            float x = origin_x + rx, y = origin_y + ry;
            int seg = ll_segment(x);
            float g = ll_gap(env, seg, x, y) - LL_SKIN;
            float nyy = env->normal_y[seg], nxx = -env->slope[seg] * nyy;
            // Arm from the centre of mass; the corner's velocity now (with
            // its leg turning at the held rate) along the normal.
            float qx = pivot_x + rx, qy = pivot_y + ry;
            float spin = w0 + side * held_rate[k];
            float vn = (vx0 - w0 * pivot_y - spin * ry) * nxx + (vy0 + w0 * pivot_x + spin * rx) * nyy;
            if (g + 1.5f * LL_DT * fminf(vn, 0.0f) > LL_TOUCH) {
                env->normal_impulse[c] = 0.0f;
                env->friction_impulse[c] = 0.0f;
                continue;
            }
            leg_of[n] = k;
            slot[n] = c;
            nx[n] = nxx;
            ny[n] = nyy;
            // Moments of the normal n and tangent t = (ny, -nx) about the
            // centre of mass (body) and about the pivot (the leg's joint).
            an[n] = qx * nyy - qy * nxx;
            at[n] = -qx * nxx - qy * nyy;
            rn[n] = rx * nyy - ry * nxx;
            rt[n] = -rx * nxx - ry * nyy;
            // The corner's own speed from its leg turning at the held rate.
            en[n] = side * held_rate[k] * rn[n];
            et[n] = side * held_rate[k] * rt[n];
            mass_n[n] = 1.0f / (LL_INV_MASS + an[n] * an[n] * inv_i);
            mass_t[n] = 1.0f / (LL_INV_MASS + at[n] * at[n] * inv_i);
            gap[n] = g;
            arriving[k] &= g >= LL_TOUCH - LL_SKIN;
            touching[k] |= g < LL_TOUCH - LL_SKIN;
            foldable[k] &= side * rn[n] > 0.05f;
            n++;
        }
    }

    float ln[LL_CORNERS], lt[LL_CORNERS];
    // Legs left out of the iterations: folding, or arriving (when folding can
    // keep them off the ground; else they are held, as Box2D's impact would
    // push the hull too).
    arriving[0] &= foldable[0];
    arriving[1] &= foldable[1];
    int folding[2] = {0, 0}, skip[2] = {arriving[0], arriving[1]};
    float vx = vx0, vy = vy0, w = w0;
    for (int pass = 0; pass < 3; pass++) {
        vx = vx0;
        vy = vy0;
        w = w0;
        // Folding legs: the lowest corner's impulse, moment = the motor's.
        for (int k = 0; k < 2; k++) {
            if (!folding[k]) continue;
            int low = -1;
            for (int i = 0; i < n; i++) {
                if (leg_of[i] == k && (low < 0 || gap[i] < gap[low])) low = i;
            }
            float side = k == 0 ? 1.0f : -1.0f;
            // Friction opposes the corner's sliding: the body's motion there
            // plus the leg's folding (at last step's rate).
            float slide = vx0 * ny[low] - vy0 * nx[low] + w0 * at[low] + side * env->leg_rate[k] * rt[low];
            float mu = slide >= 0.0f ? -LL_FRICTION : LL_FRICTION;
            float normal = max_torque / (side * (rn[low] + mu * rt[low]));
            float friction = mu * normal;
            vx += (nx[low] * normal + ny[low] * friction) * LL_INV_MASS;
            vy += (ny[low] * normal - nx[low] * friction) * LL_INV_MASS;
            w += (an[low] * normal + at[low] * friction) * inv_i;
            for (int i = 0; i < n; i++) {
                if (leg_of[i] != k) continue;
                ln[i] = i == low ? normal : 0.0f;
                lt[i] = i == low ? friction : 0.0f;
            }
        }
        // Held legs: warm start with last step's impulses, then iterate.
        for (int i = 0; i < n; i++) {
            if (skip[leg_of[i]]) {
                ln[i] = lt[i] = 0.0f;
                continue;
            }
            ln[i] = env->normal_impulse[slot[i]];
            lt[i] = env->friction_impulse[slot[i]];
            vx += (nx[i] * ln[i] + ny[i] * lt[i]) * LL_INV_MASS;
            vy += (ny[i] * ln[i] - nx[i] * lt[i]) * LL_INV_MASS;
            w += (an[i] * ln[i] + at[i] * lt[i]) * inv_i;
        }
        for (int it = 0; it < LL_ITERATIONS; it++) {
            for (int i = 0; i < n; i++) {
                if (skip[leg_of[i]]) continue;
                // Friction: tangential speed -> 0, |impulse| <= mu * normal.
                float vt = vx * ny[i] - vy * nx[i] + w * at[i] + et[i];
                float limit = LL_FRICTION * ln[i];
                float acc = ll_clamp(lt[i] - mass_t[i] * vt, -limit, limit);
                float l = acc - lt[i];
                lt[i] = acc;
                vx += ny[i] * l * LL_INV_MASS;
                vy -= nx[i] * l * LL_INV_MASS;
                w += at[i] * l * inv_i;
                // Normal: approach no faster than the gap allows; never pull.
                float vn = vx * nx[i] + vy * ny[i] + w * an[i] + en[i];
                acc = fmaxf(ln[i] - mass_n[i] * (vn + fmaxf(gap[i], 0.0f) * LL_FPS), 0.0f);
                l = acc - ln[i];
                ln[i] = acc;
                vx += nx[i] * l * LL_INV_MASS;
                vy += ny[i] * l * LL_INV_MASS;
                w += an[i] * l * inv_i;
            }
        }
        // Does a held leg need more than the motor's torque (folding way)?
        // The one that needs most folds, and the solve runs again.
        int worst = -1;
        float excess = 0.0f;
        for (int k = 0; k < 2; k++) {
            if (skip[k] || env->leg[k] >= LL_LEG_UPPER || !foldable[k]) continue;
            float side = k == 0 ? 1.0f : -1.0f, moment = 0.0f;
            int low = -1;
            for (int i = 0; i < n; i++) {
                if (leg_of[i] != k) continue;
                moment += rn[i] * ln[i] + rt[i] * lt[i];
                if (low < 0 || gap[i] < gap[low]) low = i;
            }
            if (side * moment - max_torque > excess && side * (rn[low] - LL_FRICTION * fabsf(rt[low])) > 0.05f) {
                excess = side * moment - max_torque;
                worst = k;
            }
        }
        if (worst < 0) break;
        folding[worst] = skip[worst] = 1;
    }

    for (int i = 0; i < n; i++) {
        env->normal_impulse[slot[i]] = skip[leg_of[i]] ? 0.0f : ln[i];
        env->friction_impulse[slot[i]] = skip[leg_of[i]] ? 0.0f : lt[i];
    }
    // Leg rates: held legs turn at the held rate; folding and arriving legs
    // fold as fast as keeps their corners off the ground (never slower than
    // held).
    for (int k = 0; k < 2; k++) rate[k] = held_rate[k];
    for (int i = 0; i < n; i++) {
        int k = leg_of[i];
        if (!skip[k]) continue;
        float side = k == 0 ? 1.0f : -1.0f;
        float vn = vx * nx[i] + vy * ny[i] + w * an[i];
        // Box2D's time of impact lets an arriving corner come 1 cm closer
        // than the resting distance before it stops it.
        float target = arriving[k] ? gap[i] + LL_TOI_SLOP : gap[i];
        if (side * rn[i] > 0.05f) rate[k] = fmaxf(rate[k], side * (-target * LL_FPS - vn) / rn[i]);
    }
    // Contact flags as Gymnasium reads them from Box2D's contact events: a
    // leg touches when it was within the touching distance as the step
    // began (Box2D finds contacts before it moves the bodies), or when it
    // had to fold or push to meet the ground (Box2D's time-of-impact pass).
    int met[2] = {rate[0] > held_rate[0] + 1e-3f, rate[1] > held_rate[1] + 1e-3f};
    for (int i = 0; i < n; i++) met[leg_of[i]] |= ln[i] > 0.0f;
    for (int k = 0; k < 2; k++) env->leg_contact[k] = (float)(touching[k] | met[k]);
    // End-of-step gaps (linearized); a held corner still in the ground (it
    // started there) is pushed out by moving the body, not by giving it
    // speed: Box2D's position correction.
    float end_gap[LL_CORNERS], deepest = 0.0f;
    for (int i = 0; i < n; i++) {
        int k = leg_of[i];
        float vn = vx * nx[i] + vy * ny[i] + w * an[i] + (k == 0 ? 1.0f : -1.0f) * rate[k] * rn[i];
        end_gap[i] = gap[i] + LL_DT * vn;
        if (!skip[k]) deepest = fminf(deepest, end_gap[i]);
    }
    if (deepest < -0.001f) {
        float dx = 0.0f, dy = 0.0f, da = 0.0f, push[LL_CORNERS] = {0};
        for (int it = 0; it < LL_ITERATIONS; it++) {
            for (int i = 0; i < n; i++) {
                if (skip[leg_of[i]]) continue;
                float c = end_gap[i] + dx * nx[i] + dy * ny[i] + da * an[i];
                float acc = fmaxf(push[i] - mass_n[i] * c, 0.0f);
                float l = acc - push[i];
                push[i] = acc;
                dx += nx[i] * l * LL_INV_MASS;
                dy += ny[i] * l * LL_INV_MASS;
                da += an[i] * l * inv_i;
            }
        }
        env->cx += dx;
        env->cy += dy;
        env->angle += da;
    }
    *vx_ = vx;
    *vy_ = vy;
    *w_ = w;
}

// Whether the hull touches the ground: a hull corner within the touching
// distance of the terrain, or a terrain point within it of the hull.
static int ll_hull_touches(const LunarLander* env) {
    float sn = sinf(env->angle), cs = cosf(env->angle);
    float ox = env->cx + sn * LL_COM, oy = env->cy - cs * LL_COM;
    float lo = 1e30f, hi = -1e30f;
    for (int j = 0; j < 6; j++) {
        float x = ox + LL_HULL[j][0] * cs - LL_HULL[j][1] * sn;
        float y = oy + LL_HULL[j][0] * sn + LL_HULL[j][1] * cs;
        if (ll_gap(env, ll_segment(x), x, y) < LL_TOUCH) return 1;
        lo = fminf(lo, x);
        hi = fmaxf(hi, x);
    }
    int first = (int)ll_clamp(ceilf((lo - LL_TOUCH) * (1.0f / LL_CHUNK_W)), 0.0f, (float)LL_CHUNKS);
    int last = (int)ll_clamp(floorf((hi + LL_TOUCH) * (1.0f / LL_CHUNK_W)), -1.0f, (float)(LL_CHUNKS - 1));
    for (int i = first; i <= last; i++) {
        // Terrain point in the hull's frame, against each edge's line.
        float dx = LL_CHUNK_W * (float)i - ox, dy = env->ground[i] - oy;
        float px = dx * cs + dy * sn, py = -dx * sn + dy * cs;
        int inside = 1;
        for (int j = 0; j < 6; j++) {
            const float* a = LL_HULL[j];
            const float* b = LL_HULL[(j + 1) % 6];
            float ex = b[0] - a[0], ey = b[1] - a[1];
            // Outward normal of a counter-clockwise edge: (ey, -ex) / |e|.
            float dist = ((px - a[0]) * ey - (py - a[1]) * ex) / sqrtf(ex * ex + ey * ey);
            inside &= dist < LL_TOUCH;
        }
        if (inside) return 1;
    }
    return 0;
}

// One physics step of 1/FPS, Gymnasium's order: engine impulses (powers in
// [0, 1], side_dir -1 left / +1 right, dispersions in [-1/SCALE, 1/SCALE)),
// then Box2D's step: gravity, contacts, positions (symplectic Euler). Sets
// crashed (hull within touching distance of the ground) and asleep (at rest).
// In the air (nothing can reach the terrain this step) the legs only turn
// back toward their lower limit at the motor's speed; near the ground
// ll_contact_solve takes over.
void ll_physics(LunarLander* env, float m_power, float s_power, float side_dir, float disp0, float disp1) {
    float sn = sinf(env->angle), cs = cosf(env->angle);
    // Centre of mass relative to the hull's origin, where Gymnasium applies
    // the engines (tip = (sn, cs), side = (-cs, sn)).
    float ax = -sn * LL_COM, ay = cs * LL_COM;
    float main_off = LL_MAIN_ENGINE_Y + 2.0f * disp0;
    float mx = sn * main_off - cs * disp1, my = -cs * main_off - sn * disp1;
    float mk = -LL_MAIN_ENGINE_POWER * m_power;
    float main_px = mx * mk, main_py = my * mk;
    float side_off = 3.0f * disp1 + side_dir * LL_SIDE_ENGINE_AWAY;
    float sx = sn * disp0 - cs * side_off, sy = -cs * disp0 - sn * side_off;
    float sk = -LL_SIDE_ENGINE_POWER * s_power;
    float side_px = sx * sk, side_py = sy * sk;
    float side_ax = sx - sn * LL_SIDE_ENGINE_X, side_ay = sy + cs * LL_SIDE_ENGINE_HEIGHT;
    float torque = (mx - ax) * main_py - (my - ay) * main_px
        + (side_ax - ax) * side_py - (side_ay - ay) * side_px;
    float vx = env->vx + (main_px + side_px) * LL_INV_MASS;
    float vy = env->vy + (main_py + side_py) * LL_INV_MASS + LL_GRAVITY * LL_DT;

    // Broad phase: can any part reach the terrain under it this step?
    float ox = env->cx - ax, oy = env->cy - ay;
    float span = LL_REACH + 0.05f + LL_DT * fabsf(vx);
    int first = ll_segment(ox - span), last = ll_segment(ox + span) + 1;
    float top = env->ground[first];
    for (int i = first + 1; i <= last; i++) top = fmaxf(top, env->ground[i]);
    float reach = LL_REACH + 0.05f + LL_DT * (fmaxf(-vy, 0.0f) + fabsf(env->omega) * LL_REACH);
    float w = env->omega + torque * (1.0f / LL_INERTIA);
    float rate[2];
    if (oy - reach > top) {
        // In the air: the legs turn back toward their lower limit.
        for (int k = 0; k < 2; k++) {
            rate[k] = ll_held_rate(env->leg[k]);
            env->leg_contact[k] = 0.0f;
        }
        for (int c = 0; c < LL_CORNERS; c++) env->normal_impulse[c] = env->friction_impulse[c] = 0.0f;
    } else {
        ll_contact_solve(env, sn, cs, &vx, &vy, &w, rate);
    }
    float rate0 = rate[0], rate1 = rate[1];
    env->vx = vx;
    env->vy = vy;
    env->omega = w;
    env->leg_rate[0] = rate0;
    env->leg_rate[1] = rate1;
    env->cx += vx * LL_DT;
    env->cy += vy * LL_DT;
    env->angle += w * LL_DT;
    env->leg[0] = ll_clamp(env->leg[0] + rate0 * LL_DT, LL_LEG_MIN, LL_LEG_UPPER);
    env->leg[1] = ll_clamp(env->leg[1] + rate1 * LL_DT, LL_LEG_MIN, LL_LEG_UPPER);
    env->crashed = oy - reach > top ? 0 : ll_hull_touches(env);

    // Box2D's sleep: every body slow for half a second.
    const float lin2 = LL_SLEEP_LINEAR * LL_SLEEP_LINEAR, ang2 = LL_SLEEP_ANGULAR * LL_SLEEP_ANGULAR;
    float psi0 = w + rate0, psi1 = w - rate1;
    int still = (vx * vx + vy * vy <= lin2) & (w * w <= ang2) & (psi0 * psi0 <= ang2) & (psi1 * psi1 <= ang2);
    env->sleep_time = still ? env->sleep_time + LL_DT : 0.0f;
    env->asleep = env->sleep_time >= LL_SLEEP_TIME;
}

// Reset: terrain, then the state Gymnasium's reset leaves after its first
// step, a linear function of the initial force (F applied for one step to a
// lander at the top centre, plus the settling of its legs into their joints),
// fitted to Box2D to 1e-5.
void c_reset(LunarLander* env) {
    ll_make_terrain(env);
    float fx = rng_uniform(&env->rng, -LL_INITIAL_RANDOM, LL_INITIAL_RANDOM);
    float fy = rng_uniform(&env->rng, -LL_INITIAL_RANDOM, LL_INITIAL_RANDOM);
    ll_set_body(env, LL_W / 2.0f + 7.98268e-5f * fx, 13.335469f + 8.06632e-5f * fy,
                4.042799e-3f * fx, -0.2f + 4.033161e-3f * fy, -9.24994e-6f * fx, -4.578771e-4f * fx,
                LL_LEG_RESET, LL_LEG_RESET, 0.0f, 0.0f);
    for (int c = 0; c < LL_CORNERS; c++) env->normal_impulse[c] = env->friction_impulse[c] = 0.0f;
    env->leg_contact[0] = env->leg_contact[1] = 0.0f;
    env->sleep_time = 0.0f;
    env->crashed = 0;
    env->asleep = 0;
    env->tick = 0;
    env->episode_return = 0.0;
    float s[8];
    env->prev_shaping = ll_state(env, s);
    ll_write_obs(s, env->observations);
}

void c_step(LunarLander* env) {
    float m_power, s_power, side_dir;
    if (env->continuous) {
        const float* a = (const float*)(const void*)env->actions;
        float main = ll_clamp(a[0], -1.0f, 1.0f), lateral = ll_clamp(a[1], -1.0f, 1.0f);
        m_power = main > 0.0f ? (main + 1.0f) * 0.5f : 0.0f;
        s_power = fabsf(lateral) > 0.5f ? fabsf(lateral) : 0.0f;
        side_dir = lateral > 0.0f ? 1.0f : -1.0f;
    } else {
        int a = env->actions[0];
        m_power = (float)(a == 2);
        s_power = (float)((a == 1) | (a == 3));
        side_dir = (float)(a - 2);
    }
    float disp0 = rng_uniform(&env->rng, -1.0f, 1.0f) * (1.0f / LL_SCALE);
    float disp1 = rng_uniform(&env->rng, -1.0f, 1.0f) * (1.0f / LL_SCALE);
    ll_physics(env, m_power, s_power, side_dir, disp0, disp1);

    float s[8];
    float shaping = ll_state(env, s);
    float reward = shaping - env->prev_shaping - 0.3f * m_power - 0.03f * s_power;
    env->prev_shaping = shaping;
    int crash = env->crashed | (fabsf(s[0]) >= 1.0f);
    int terminal = crash | env->asleep;
    reward = env->asleep ? 100.0f : crash ? -100.0f : reward;
    int tick = env->tick + 1;
    int truncation = !terminal & (tick >= LL_MAX_STEPS);
    env->tick = tick;
    env->episode_return += reward;
    env->rewards[0] = reward;
    env->terminals[0] = (unsigned char)terminal;
    env->truncations[0] = (unsigned char)truncation;
    if (terminal | truncation) {
        ll_write_obs(s, env->final_observations);
        log_episode(&env->log, env->episode_return, (double)tick, (double)env->asleep);
        c_reset(env);
        return;
    }
    ll_write_obs(s, env->observations);
}

void c_close(LunarLander* env) {
    (void)env;
}
