# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

cdef extern from "delayed_reward.h":
    ctypedef struct DelayedReward:
        float* observations
        int* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        float* final_observations
        Log log
        uint64_t rng
        int delay
    void c_reset(DelayedReward* env) nogil
    void c_step(DelayedReward* env) nogil
    void c_close(DelayedReward* env) nogil

ctypedef DelayedReward Env
ctypedef float Obs
ctypedef int Act

cdef void configure(Env* env, dict config) except *:
    env.delay = config["delay"]

include "vecenv.pxi"
