# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
include "puffer.pxi"

cdef extern from "light_button.h":
    int LIGHT_BUTTON_MAX_DELAY
    ctypedef struct LightButton:
        float* observations
        int* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        float* final_observations
        Log log
        uint64_t rng
        int num_buttons
        int horizon
        int hard
        int show_step
        int delay
    void c_reset(LightButton* env) nogil
    void c_step(LightButton* env) nogil
    void c_close(LightButton* env) nogil

MAX_DELAY = LIGHT_BUTTON_MAX_DELAY

ctypedef LightButton Env
ctypedef float Obs
ctypedef int Act

cdef void configure(Env* env, dict config) except *:
    env.num_buttons = config["num_buttons"]
    env.horizon = config["horizon"]
    env.hard = config["hard"]
    env.show_step = config["show_step"]
    env.delay = config["delay"]

include "vecenv.pxi"
