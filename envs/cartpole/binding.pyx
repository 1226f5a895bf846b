# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

cdef extern from "cartpole.h":
    int CARTPOLE_MAX_STEPS
    ctypedef struct CartPole:
        float* observations
        int* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        float* final_observations
        Log log
        uint64_t rng
    void c_reset(CartPole* env) nogil
    void c_step(CartPole* env) nogil
    void c_close(CartPole* env) nogil

MAX_STEPS = CARTPOLE_MAX_STEPS

ctypedef CartPole Env
ctypedef float Obs
ctypedef int Act

cdef void configure(Env* env, dict config) except *:
    pass  # CartPole-v1 has no options

include "vecenv.pxi"
