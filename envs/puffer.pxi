# Declarations of puffer.h for the bindings. Every binding.pyx includes this
# first, declares its env struct (as `Env`) with c_reset/c_step/c_close, a
# `configure(Env*, dict)` function, the `Obs` and `Act` types, and then
# includes vecenv.pxi, which holds the vectorized loop shared by all envs.
from libc.stdint cimport uint64_t

cdef extern from "puffer.h":
    ctypedef struct Log:
        double episode_return
        double episode_length
        double score
        double n

    uint64_t rng_seed(uint64_t seed, uint64_t index)
