# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

cdef extern from "continuous_target.h":
    ctypedef struct ContinuousTarget:
        float* observations
        float* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        float* final_observations
        Log log
        uint64_t rng
        int horizon
    void c_reset(ContinuousTarget* env) nogil
    void c_step(ContinuousTarget* env) nogil
    void c_close(ContinuousTarget* env) nogil

ctypedef ContinuousTarget Env
ctypedef float Obs
ctypedef float Act

cdef void configure(Env* env, dict config) except *:
    env.horizon = config["horizon"]

include "vecenv.pxi"
