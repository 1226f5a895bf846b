# The infos dict of each step, made once per step by every vector env:
# compiled, so that it costs about what a plain dict does.
from libc.string cimport memchr

cdef class SameStepInfos(dict):
    """The infos of an autoreset SAME_STEP step where an episode ended:
    "final_observations" (the dense buffer, valid in the rows where one
    did), and Gymnasium's keys for those envs: "final_obs", an object array
    holding a copy of each one's last observation (None for the others),
    "_final_obs" its mask, "final_info" ({}: puffer envs have no per-env
    infos) and its mask "_final_info".

    An object array of num_envs entries costs more than a C step of many
    envs, so Gymnasium's keys are added the first time the dict is read for
    anything but "final_observations", from the buffers as they are then:
    read them before the next step, as the buffers themselves."""

    cdef object terminals, truncations, final_observations  # None once Gymnasium's keys are in

    cpdef add_gymnasium_keys(self):
        if self.terminals is None:
            return
        import numpy as np
        mask = self.terminals | self.truncations
        final_observations = self.final_observations
        self.terminals = self.truncations = self.final_observations = None
        rows = np.flatnonzero(mask)
        if rows.size:
            final_obs = np.full(len(mask), None, object)
            for row, observation in zip(rows, final_observations[rows]):
                final_obs[row] = observation
            dict.update(self, final_obs=final_obs, _final_obs=mask, final_info={}, _final_info=mask.copy())

    def __missing__(self, key):
        self.add_gymnasium_keys()
        return dict.__getitem__(self, key)

    def __contains__(self, key):
        self.add_gymnasium_keys()
        return dict.__contains__(self, key)

    def __iter__(self):
        self.add_gymnasium_keys()
        return dict.__iter__(self)

    def __len__(self):
        self.add_gymnasium_keys()
        return dict.__len__(self)

    def __repr__(self):
        self.add_gymnasium_keys()
        return dict.__repr__(self)

    def __eq__(self, other):
        self.add_gymnasium_keys()
        return dict.__eq__(self, other)

    def __or__(self, other):
        self.add_gymnasium_keys()
        return dict(self) | other

    def keys(self):
        self.add_gymnasium_keys()
        return dict.keys(self)

    def items(self):
        self.add_gymnasium_keys()
        return dict.items(self)

    def values(self):
        self.add_gymnasium_keys()
        return dict.values(self)

    def get(self, key, default=None):
        self.add_gymnasium_keys()
        return dict.get(self, key, default)

    def copy(self):
        self.add_gymnasium_keys()
        return dict.copy(self)

    def pop(self, key, *default):
        self.add_gymnasium_keys()
        return dict.pop(self, key, *default)

    def popitem(self):
        self.add_gymnasium_keys()
        return dict.popitem(self)

    def setdefault(self, key, default=None):
        self.add_gymnasium_keys()
        return dict.setdefault(self, key, default)

    def __reduce__(self):  # pickled and deep-copied as the plain dict it reads as
        self.add_gymnasium_keys()
        return dict, (dict.copy(self),)


cdef class StepInfos:
    """Makes the infos of each step over one env's buffers (or views of
    them): `make()` gives a new dict each step. In autoreset mode SAME_STEP,
    a SameStepInfos where an episode ended, else a plain dict; in NEXT_STEP,
    whose ended envs' observations are in the observations themselves, an
    empty dict. With `env_id` (EnvPool's key: the rows of the batch), that too."""

    cdef object terminal_flags, truncation_flags, final_observations, env_id
    cdef const unsigned char[::1] terminals, truncations
    cdef bint next_step

    def __init__(self, terminals, truncations, final_observations, next_step=False, env_id=None):
        import numpy as np
        self.terminal_flags, self.truncation_flags = terminals, truncations
        self.terminals, self.truncations = terminals.view(np.uint8), truncations.view(np.uint8)
        self.final_observations, self.next_step, self.env_id = final_observations, next_step, env_id

    cdef bint any_ended(self):
        # memchr: vectorised, and it stops at the first (with many envs,
        # some env ends nearly every step).
        cdef Py_ssize_t n = self.terminals.shape[0]
        return n > 0 and (memchr(&self.terminals[0], 1, n) != NULL or memchr(&self.truncations[0], 1, n) != NULL)

    def make(self):
        if self.next_step:
            return {} if self.env_id is None else {"env_id": self.env_id}
        if not self.any_ended():
            infos = {"final_observations": self.final_observations}
        else:
            infos = SameStepInfos.__new__(SameStepInfos)
            infos["final_observations"] = self.final_observations
            (<SameStepInfos>infos).terminals = self.terminal_flags
            (<SameStepInfos>infos).truncations = self.truncation_flags
            (<SameStepInfos>infos).final_observations = self.final_observations
        if self.env_id is not None:
            infos["env_id"] = self.env_id
        return infos
