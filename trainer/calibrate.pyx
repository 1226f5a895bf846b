# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A fixed compiled reference loop: the yardstick of the benchmark suite.

The benchmarks (benchmarks/) divide each speed they measure by the speed of
this loop, measured in the same run right before each timed round, so that
the speed of the machine and the load on it cancel to first order. The loop
is a toy vectorized env: an array of small structs, each holding its state
and a pointer into a shared observation buffer, stepped one after the other
with float arithmetic, an xorshift draw, a division, a few compares, four
observation writes and an occasional reset -- the kind of work a C env's
`c_step` does, so that it slows down and speeds up with the things that slow
down and speed up env stepping (clock, cache and memory, a busy neighbour).

Never change what it computes: the stored baseline (benchmarks/baseline.json)
is expressed in units of its speed. If it must change, rerun
`python benchmarks/check.py --update`.
"""
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free


cdef struct Body:
    float* obs
    uint64_t rng
    float x
    float v
    int tick
    int episodes


cdef inline float draw(uint64_t* state) noexcept nogil:
    """Uniform in [-1, 1) from xorshift64*."""
    cdef uint64_t x = state[0]
    x ^= x >> 12
    x ^= x << 25
    x ^= x >> 27
    state[0] = x
    return <float>((x * 0x2545F4914F6CDD1Dull) >> 40) * (2.0 / 16777216.0) - 1.0


cdef inline void body_step(Body* b) noexcept nogil:
    cdef float force = 10.0 if draw(&b.rng) > 0 else -10.0
    cdef float acc = (force - 9.8 * b.x - 0.1 * b.v * b.v) / (1.1 + 0.05 * b.x * b.x)
    b.x = b.x + 0.02 * b.v
    b.v = b.v + 0.02 * acc
    b.tick += 1
    cdef float* obs = b.obs
    obs[0] = b.x
    obs[1] = b.v
    obs[2] = acc
    obs[3] = <float>b.tick
    if (b.x > 2.4) | (b.x < -2.4) | (b.tick >= 500):
        b.episodes += 1
        b.x = 0.05 * draw(&b.rng)
        b.v = 0.05 * draw(&b.rng)
        b.tick = 0


cdef class Reference:
    """`num_bodies` toy envs; `run(steps)` steps them all `steps` times."""
    cdef Body* bodies
    cdef float* observations
    cdef readonly int num_bodies

    def __cinit__(self, int num_bodies=4096):
        if num_bodies < 1:
            raise ValueError(f"num_bodies must be at least 1, got {num_bodies}")
        self.num_bodies = num_bodies
        self.bodies = <Body*>calloc(num_bodies, sizeof(Body))
        self.observations = <float*>calloc(4 * <size_t>num_bodies, sizeof(float))
        if self.bodies == NULL or self.observations == NULL:
            raise MemoryError(f"cannot allocate {num_bodies} bodies")
        cdef int i
        for i in range(num_bodies):
            self.bodies[i].obs = &self.observations[4 * i]
            self.bodies[i].rng = 0x9E3779B97F4A7C15ull * <uint64_t>(i + 1) + 1

    def __dealloc__(self):
        free(self.bodies)
        free(self.observations)

    def run(self, long steps):
        """Steps every body `steps` times; returns the number of episodes
        ended so far (so that the work cannot be optimized away)."""
        cdef long s
        cdef int i
        cdef long episodes = 0
        with nogil:
            for s in range(steps):
                for i in range(self.num_bodies):
                    body_step(&self.bodies[i])
            for i in range(self.num_bodies):
                episodes += self.bodies[i].episodes
        return episodes
