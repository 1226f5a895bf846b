# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

cdef extern from "constant_reward.h":
    ctypedef struct ConstantReward:
        float* observations
        int* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        float* final_observations
        Log log
        uint64_t rng
        int length
    void c_reset(ConstantReward* env) nogil
    void c_step(ConstantReward* env) nogil
    void c_close(ConstantReward* env) nogil

ctypedef ConstantReward Env
ctypedef float Obs
ctypedef int Act

cdef void configure(Env* env, dict config) except *:
    env.length = config["length"]

include "vecenv.pxi"
