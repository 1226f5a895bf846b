# The vectorized loop shared by every env binding: it wires caller-owned numpy
# buffers to an array of C env structs and steps them all in one C loop
# (without the GIL, when there are enough of them). See puffer.pxi for what
# the including binding declares.
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

cdef enum:
    RELEASE_GIL_ENVS = 32  # see step_envs

cdef extern from "puffer.h":
    long first_invalid_action(Act* actions, long count, int num_actions)


cdef class VecEnv:
    cdef Env* envs
    cdef readonly int num_envs
    cdef readonly int num_actions  # discrete: number of actions; 0: continuous
    cdef Act[:, ::1] actions
    cdef float[::1] rewards
    cdef unsigned char[::1] terminals
    cdef unsigned char[::1] truncations
    cdef Obs[:, ::1] observations
    cdef Obs[:, ::1] final_observations
    cdef object buffers  # keeps the arrays alive while C holds pointers into them
    # Autoreset NEXT_STEP: the step that ends an episode shows its last
    # observation and the reset's is kept here, to be shown by the next step,
    # which steps nothing. The C envs reset inside the ending step either way,
    # so a seed plays the same episodes in both modes.
    cdef readonly bint next_step
    cdef Obs* reset_observations
    cdef unsigned char* resetting

    def __cinit__(self, Obs[:, ::1] observations, Act[:, ::1] actions, float[::1] rewards,
                  unsigned char[::1] terminals, unsigned char[::1] truncations,
                  Obs[:, ::1] final_observations, int num_actions, dict config):
        cdef int n = observations.shape[0]
        if n < 1:
            raise ValueError(f"num_envs must be at least 1, got {n}")
        for name, length in (("actions", actions.shape[0]), ("rewards", rewards.shape[0]),
                             ("terminals", terminals.shape[0]), ("truncations", truncations.shape[0]),
                             ("final_observations", final_observations.shape[0])):
            if length != n:
                raise ValueError(f"{name} holds {length} envs, observations hold {n}")
        if final_observations.shape[1] != observations.shape[1]:
            raise ValueError("final_observations must have the shape of observations")
        self.envs = <Env*>calloc(n, sizeof(Env))
        if self.envs == NULL:
            raise MemoryError(f"cannot allocate {n} envs")
        self.num_envs = n
        self.num_actions = num_actions
        self.actions = actions
        self.rewards = rewards
        self.terminals = terminals
        self.truncations = truncations
        self.observations = observations
        self.final_observations = final_observations
        self.buffers = (observations, final_observations)
        cdef Env* env
        for i in range(n):
            env = &self.envs[i]
            env.observations = &observations[i, 0]
            env.actions = &actions[i, 0]
            env.rewards = &rewards[i]
            env.terminals = &terminals[i]
            env.truncations = &truncations[i]
            env.final_observations = &final_observations[i, 0]
            configure(env, config)

    def __dealloc__(self):
        if self.envs != NULL:
            for i in range(self.num_envs):
                c_close(&self.envs[i])
            free(self.envs)
        free(self.reset_observations)
        free(self.resetting)

    def autoreset_next_step(self):
        """Switches to autoreset mode NEXT_STEP (see `next_step`)."""
        if self.next_step:
            return
        self.reset_observations = <Obs*>calloc(self.observations.shape[0] * self.observations.shape[1], sizeof(Obs))
        self.resetting = <unsigned char*>calloc(self.num_envs, 1)
        if self.reset_observations == NULL or self.resetting == NULL:
            raise MemoryError(f"cannot allocate the reset observations of {self.num_envs} envs")
        self.next_step = True

    def reset(self, uint64_t seed, uint64_t index_offset=0):
        """Seeds env i from (seed, index_offset + i) and resets it."""
        for i in range(self.num_envs):
            self.envs[i].rng = rng_seed(seed, index_offset + i)
            memset(&self.envs[i].log, 0, sizeof(Log))
            c_reset(&self.envs[i])
            self.rewards[i] = 0
            self.terminals[i] = 0
            self.truncations[i] = 0
        if self.next_step:
            memset(self.resetting, 0, self.num_envs)

    def step(self):
        self.check_actions()
        self.step_envs()

    cpdef check_actions(self):
        """A ValueError naming the first action out of range (a binding whose
        actions are not `Act` overrides it)."""
        cdef long count = self.actions.shape[0] * self.actions.shape[1]
        cdef long bad = first_invalid_action(&self.actions[0, 0], count, self.num_actions)
        if bad >= 0:
            row, col = divmod(bad, self.actions.shape[1])
            value = self.actions[row, col]
            if self.num_actions > 0:
                raise ValueError(f"actions[{row}] = {value} is out of range: "
                                 f"expected an integer in [0, {self.num_actions})")
            raise ValueError(f"actions[{row}, {col}] = {value} is not a finite number")

    cdef void step_envs(self) noexcept:
        # Releasing the GIL and taking it back costs about what a C step of a
        # few dozen small envs does: worth it only for a larger loop.
        if self.num_envs < RELEASE_GIL_ENVS:
            self.step_loop()
        else:
            with nogil:
                self.step_loop()

    cdef void step_loop(self) noexcept nogil:
        cdef int i
        cdef Py_ssize_t width = self.observations.shape[1]
        cdef size_t row = width * sizeof(Obs)
        if not self.next_step:
            for i in range(self.num_envs):
                c_step(&self.envs[i])
            return
        for i in range(self.num_envs):
            if self.resetting[i]:  # the reset that the last step did, shown now
                memcpy(&self.observations[i, 0], self.reset_observations + i * width, row)
                self.rewards[i] = 0
                self.terminals[i] = 0
                self.truncations[i] = 0
                self.resetting[i] = 0
                continue
            c_step(&self.envs[i])
            if self.terminals[i] | self.truncations[i]:
                memcpy(self.reset_observations + i * width, &self.observations[i, 0], row)
                memcpy(&self.observations[i, 0], &self.final_observations[i, 0], row)
                self.resetting[i] = 1

    def log(self):
        """Sums the episode logs of all envs, clears them, and returns the means
        (an empty dict when no episode has finished since the last call)."""
        cdef Log total
        memset(&total, 0, sizeof(Log))
        for i in range(self.num_envs):
            total.episode_return += self.envs[i].log.episode_return
            total.episode_length += self.envs[i].log.episode_length
            total.score += self.envs[i].log.score
            total.n += self.envs[i].log.n
            memset(&self.envs[i].log, 0, sizeof(Log))
        if total.n == 0:
            return {}
        return {"episode_return": total.episode_return / total.n,
                "episode_length": total.episode_length / total.n,
                "score": total.score / total.n,
                "episodes": int(total.n)}
