# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

cdef extern from "lunar_lander.h":
    int LL_MAX_STEPS
    int LL_CHUNKS
    float LL_W
    float LL_H
    float LL_CHUNK_W
    float LL_HELIPAD_Y
    const float LL_HULL[6][2]
    const float LL_LEG_CORNER[4][2]
    ctypedef struct LunarLander:
        float* observations
        int* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        float* final_observations
        Log log
        uint64_t rng
        int continuous
        float ground[11]
        float leg_contact[2]
        float sleep_time
        float prev_shaping
        int crashed
        int asleep
        int tick
    void c_reset(LunarLander* env) nogil
    void c_step(LunarLander* env) nogil
    void c_close(LunarLander* env) nogil
    void ll_set_terrain(LunarLander* env, const float* ground) nogil
    void ll_set_body(LunarLander* env, float x, float y, float vx, float vy, float angle, float omega,
                     float leg0, float leg1, float leg_rate0, float leg_rate1) nogil
    void ll_get_body(const LunarLander* env, float* out) nogil
    void ll_physics(LunarLander* env, float m_power, float s_power, float side_dir,
                    float disp0, float disp1) nogil
    float ll_state(const LunarLander* env, float* s) nogil

cdef extern from "puffer.h":
    long first_invalid_box(const float* actions, long count, int unused)

MAX_STEPS = LL_MAX_STEPS
CHUNKS = LL_CHUNKS
# The shapes, in metres, for the renderer (lunar_lander.py): the viewport, the
# terrain's spacing, the helipad's height, the hull's polygon about its origin
# and the corners of the +x leg about its pivot (see lunar_lander.h).
VIEWPORT = (LL_W, LL_H)
CHUNK_W = LL_CHUNK_W
HELIPAD_Y = LL_HELIPAD_Y
HULL = [(LL_HULL[j][0], LL_HULL[j][1]) for j in range(6)]
LEG_CORNERS = [(LL_LEG_CORNER[j][0], LL_LEG_CORNER[j][1]) for j in range(4)]

ctypedef LunarLander Env
ctypedef float Obs
ctypedef int Act

cdef void configure(Env* env, dict config) except *:
    env.continuous = bool(config["continuous"])

include "vecenv.pxi"


cdef class ContinuousVecEnv(VecEnv):
    """VecEnv for continuous=True: the (num_envs, 2) float32 actions buffer is
    passed in as an int32 view of the same memory (VecEnv's action type is
    int); the C env reads it as floats, and `step` checks them as floats."""

    cpdef check_actions(self):
        cdef long count = self.actions.shape[0] * self.actions.shape[1]
        cdef const float* actions = <const float*>&self.actions[0, 0]
        cdef long bad = first_invalid_box(actions, count, 0)
        if bad >= 0:
            row, col = divmod(bad, self.actions.shape[1])
            raise ValueError(f"actions[{row}, {col}] = {actions[bad]} is not a finite number")


# Access to one env's physics, for tests that compare it with Box2D's.

cdef Env* _env(VecEnv vec, int i) except NULL:
    if not 0 <= i < vec.num_envs:
        raise IndexError(f"env {i} out of range")
    return &vec.envs[i]


def get_state(VecEnv vec, int i):
    """Env i's state in Gymnasium's terms: the hull's origin (x, y), the
    velocity of its centre of mass (vx, vy), angle, omega, the legs' mirrored
    joint angles and rates (Box2D's joint angle less its 0.05 reference
    angle; leg 1's negated), contact flags, terrain heights, flags."""
    cdef Env* env = _env(vec, i)
    cdef float out[10]
    cdef float s[8]
    ll_get_body(env, out)
    shaping = ll_state(env, s)
    return dict(x=out[0], y=out[1], vx=out[2], vy=out[3], angle=out[4], omega=out[5],
                legs=(out[6], out[7]), leg_rates=(out[8], out[9]),
                contacts=(env.leg_contact[0], env.leg_contact[1]),
                ground=[env.ground[j] for j in range(LL_CHUNKS)], state=[s[j] for j in range(8)],
                shaping=shaping, crashed=bool(env.crashed), asleep=bool(env.asleep),
                sleep_time=env.sleep_time, tick=env.tick)


def set_state(VecEnv vec, int i, x, y, vx, vy, angle, omega, legs=(0.35, 0.35), leg_rates=(0.0, 0.0),
              ground=None):
    """Puts env i in this state (see get_state); `ground`: 11 terrain heights."""
    cdef Env* env = _env(vec, i)
    cdef float heights[11]
    if ground is not None:
        if len(ground) != LL_CHUNKS:
            raise ValueError(f"ground needs {LL_CHUNKS} heights")
        for j in range(LL_CHUNKS):
            heights[j] = ground[j]
        ll_set_terrain(env, heights)
    ll_set_body(env, x, y, vx, vy, angle, omega, legs[0], legs[1], leg_rates[0], leg_rates[1])
    env.sleep_time = 0


def physics_step(VecEnv vec, int i, float m_power, float s_power, float side_dir, float disp0, float disp1):
    """One physics step of env i with these engine powers and dispersions
    (no reward, no reset); returns get_state's dict after it."""
    cdef Env* env = _env(vec, i)
    ll_physics(env, m_power, s_power, side_dir, disp0, disp1)
    return get_state(vec, i)
