"""Vector environments: N envs behind one set of numpy buffers.

`PufferEnv` is the in-process backend: the env classes in `puffer.envs` derive
from it and step all their C envs in one C loop. The buffers (observations,
actions, rewards, terminals, truncations, final_observations) belong to the
Python side; `step` returns those same arrays every time, never copies.
"""
import multiprocessing as mp
import os
import pickle
import secrets
import signal
import time
import traceback
import weakref
from collections import deque
from multiprocessing import connection as mp_connection
from types import SimpleNamespace

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


def buffer_specs(observation_space, action_space, num_envs):
    """Name -> (shape, dtype) of each buffer for `num_envs` envs with these single spaces."""
    obs = ((num_envs, *observation_space.shape), np.dtype(observation_space.dtype))
    return {
        "observations": obs,
        "actions": ((num_envs, *action_space.shape), np.dtype(action_space.dtype)),
        "rewards": ((num_envs,), np.dtype(np.float32)),
        "terminals": ((num_envs,), np.dtype(np.bool_)),
        "truncations": ((num_envs,), np.dtype(np.bool_)),
        "final_observations": obs,
    }


def available_memory():
    """Bytes of memory the system can still give (Linux's MemAvailable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(observation_space, action_space, num_envs):
    """A ValueError, before anything is allocated, when `num_envs` envs'
    buffers and the batched spaces' bounds (a Box's low and high per env)
    would not fit in the memory available: better than being OOM-killed."""
    needed = sum(int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                 for shape, dtype in buffer_specs(observation_space, action_space, num_envs).values())
    for space in (observation_space, action_space):
        per_env = 2 * space.dtype.itemsize * int(np.prod(space.shape)) if isinstance(space, spaces.Box) else 8
        needed += per_env * num_envs
    available = available_memory()
    if needed > available:
        raise ValueError(f"num_envs={num_envs:,} needs at least {needed / 2**30:.1f} GiB for its buffers "
                         f"and spaces, but only {available / 2**30:.1f} GiB of memory is available")


def allocate_buffers(observation_space, action_space, num_envs, zeros=np.zeros):
    """The buffers for `num_envs` envs with these single spaces. `zeros(shape,
    dtype)` allocates one zero-filled array: numpy by default, shared memory
    for the multiprocessing backend."""
    specs = buffer_specs(observation_space, action_space, num_envs)
    return SimpleNamespace(**{name: zeros(shape, dtype) for name, (shape, dtype) in specs.items()})


def check_int(name, value, low, high=None):
    """`value` as an int, or a ValueError naming `name` and the allowed range
    (bools and floats are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
            or value < low or (high is not None and value > high):
        allowed = f"in [{low}, {high}]" if high is not None else f"of at least {low}"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def resolve_seed(seed):
    """`seed` as an int below 2**64 (what the C envs' RNG takes), a random one
    for None, or a ValueError. Larger seeds, which Gymnasium accepts, are
    hashed down deterministically (numpy's SeedSequence), not truncated, so
    2**64 + 1 and 1 start different episodes."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if seed >= 2**64:
        return int(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0])
    return int(seed)


def check_num_envs(num_envs):
    return check_int("num_envs", num_envs, 1)


def check_action_values(action_space, actions):
    """Raises ValueError for a discrete action outside [0, n) or a continuous
    one that is not finite: the check the C binding does, in numpy."""
    if isinstance(action_space, spaces.Discrete):
        bad = np.flatnonzero((actions < 0) | (actions >= action_space.n))
        if bad.size:
            raise ValueError(f"actions[{bad[0]}] = {actions.flat[bad[0]]} is out of range: "
                             f"expected an integer in [0, {action_space.n})")
    elif not np.isfinite(actions).all():
        row = np.flatnonzero(~np.isfinite(actions.reshape(len(actions), -1)).all(axis=1))[0]
        raise ValueError(f"actions[{row}] = {actions[row]} is not finite")


def write_actions(action_space, target, actions):
    """Copies `actions` into the buffer `target` after checking their shape,
    kind and (before a cast could wrap them) range."""
    actions = np.asarray(actions)
    if actions.shape != target.shape:
        raise ValueError(f"actions must have shape {target.shape} (a row per env stepped: num_envs, or "
                         f"batch_size in async mode; then the single action's shape), got {actions.shape}")
    if isinstance(action_space, spaces.Discrete):
        if actions.dtype.kind not in "iu":
            raise TypeError(f"discrete actions must be integers, got dtype {actions.dtype}")
        if actions.dtype != np.int32:
            check_action_values(action_space, actions)
    elif actions.dtype.kind not in "fiu":  # integers too, as Gymnasium's Box envs take them
        raise TypeError(f"continuous actions must be numbers, got dtype {actions.dtype}")
    target[...] = actions  # casts as np.copyto(casting="unsafe") does, in a quarter of its time


SAME_STEP, NEXT_STEP = AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP  # module globals: a fast lookup per step


def step_infos_maker(terminals, truncations, final_observations, autoreset_mode, env_id=None):
    """What makes each step's infos over these buffers (puffer.envs.step_infos)."""
    # Compiled: imported when an env is made, so that `import puffer` needs no build.
    from puffer.envs.step_infos import StepInfos
    return StepInfos(terminals, truncations, final_observations, autoreset_mode is NEXT_STEP, env_id).make


def check_env_id(env_id, expected):
    """A ValueError unless `env_id` names the envs `expected` (a range), in order."""
    if not np.array_equal(np.asarray(env_id), np.asarray(expected)):
        raise ValueError(f"env_id must be the envs of the batch whose actions are due, "
                         f"{expected.start}..{expected.stop - 1} in order (batches go round in a fixed "
                         f"order: the env_id recv() returned for it), got {env_id!r}")


def check_autoreset_mode(mode):
    """`mode` (an AutoresetMode, or its value: "SameStep", "NextStep") as an
    AutoresetMode, or a ValueError naming the modes puffer envs have."""
    try:
        mode = AutoresetMode(mode)
    except ValueError:
        mode = None
    if mode not in (SAME_STEP, NEXT_STEP):
        raise ValueError("autoreset_mode must be AutoresetMode.SAME_STEP (\"SameStep\", puffer's) or "
                         "AutoresetMode.NEXT_STEP (\"NextStep\", Gymnasium's default); DISABLED is not "
                         f"a mode of puffer envs, which reset themselves when an episode ends; got {mode!r}")
    return mode


def reset_infos(autoreset_mode, final_observations):
    """The infos of a reset: SAME_STEP's dense final_observations, or none."""
    return {} if autoreset_mode is NEXT_STEP else {"final_observations": final_observations}


class PufferEnv(VectorEnv):
    """Base of every C env. A subclass sets `single_observation_space` and
    `single_action_space` (Discrete, or a float32 Box), calls
    `super().__init__(num_envs, buffers)` and then `self.bind(binding.VecEnv, config)`.

    `buffers`, when given, are preallocated arrays (see `allocate_buffers`) that
    the env writes into instead of its own: the multiprocessing backend passes
    slices of shared memory.

    A Gymnasium `VectorEnv` in autoreset mode SAME_STEP: an episode resets
    inside the step that ends it, and its last observation is in
    `infos["final_observations"]`, a dense array whose rows are valid where
    `terminals | truncations` (and, on the steps where an episode ended, in
    Gymnasium's per-env "final_obs": see `recv`). Or, set before the
    first reset (`set_autoreset_mode`), NEXT_STEP, Gymnasium's default: the
    step that ends an episode returns its last observation, and the env's
    next step returns the reset's, with reward 0, and ignores its action.
    """

    metadata = {"render_modes": []}
    single_observation_space: spaces.Space
    single_action_space: spaces.Space

    def __init__(self, num_envs=1, buffers=None):
        self.num_envs = check_num_envs(num_envs)
        obs_space, act_space = self.single_observation_space, self.single_action_space
        if isinstance(act_space, spaces.Discrete):
            assert act_space.dtype == np.int32, "discrete actions are int32"
        else:
            assert isinstance(act_space, spaces.Box) and act_space.dtype == np.float32, \
                "continuous actions are a float32 Box"
        if buffers is None:
            check_memory(obs_space, act_space, self.num_envs)
            buffers = allocate_buffers(obs_space, act_space, self.num_envs)
        for name, (shape, dtype) in buffer_specs(obs_space, act_space, self.num_envs).items():
            array = getattr(buffers, name)
            if array.shape != shape or array.dtype != dtype or not array.flags.c_contiguous:
                raise ValueError(f"buffer {name} must be a C-contiguous {dtype} array of shape "
                                 f"{shape}, got {array.dtype} {array.shape}")
            setattr(self, name, array)
        self.observation_space = batch_space(obs_space, self.num_envs)
        self.action_space = batch_space(act_space, self.num_envs)
        # Subclasses' metadata name their render modes; all autoreset alike.
        self.autoreset_mode = SAME_STEP
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.step_infos = step_infos_maker(self.terminals, self.truncations, self.final_observations, SAME_STEP)
        self.batch_size = self.num_envs
        self.closed = False
        self.was_reset = False  # stepping an env never reset would step an all-zero state

    @classmethod
    def max_return(cls, options):
        """The largest return an episode can have with these options (the
        env's keyword options, all given), or None where the env declares
        none. Settings that depend on it (the decision transformer's
        eval_targets and return_scale) follow it."""
        return None

    def bind(self, vec_env_class, config):
        """Creates the C envs over this env's buffers."""
        n = self.num_envs
        num_actions = int(self.single_action_space.n) if isinstance(self.single_action_space, spaces.Discrete) else 0
        self.c_envs = vec_env_class(
            self.observations.reshape(n, -1), self.actions.reshape(n, -1), self.rewards,
            self.terminals.view(np.uint8), self.truncations.view(np.uint8),
            self.final_observations.reshape(n, -1), num_actions, config)

    def set_autoreset_mode(self, mode):
        """Sets the autoreset mode (see the class), before the first reset."""
        mode = check_autoreset_mode(mode)
        if self.was_reset:
            raise RuntimeError("set_autoreset_mode() after reset(): the mode is chosen before the first reset")
        if mode is NEXT_STEP:
            self.begin_next_step()
        elif self.autoreset_mode != mode:
            raise ValueError("an env in autoreset mode NEXT_STEP stays in it: make a new one")
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.step_infos = step_infos_maker(self.terminals, self.truncations, self.final_observations, mode)

    def begin_next_step(self):
        self.c_envs.autoreset_next_step()

    def reset(self, seed=None, options=None, index_offset=0):
        """Resets every env; env i draws from (seed, index_offset + i), so a seed
        gives the same trajectories however the envs are split over workers.
        `options` is Gymnasium's argument: puffer envs take theirs when made."""
        self.check_open()
        if options:
            raise ValueError(f"{type(self).__name__}.reset takes no options (an env's options are "
                             f"given when it is made), got {options!r}")
        self.c_envs.reset(resolve_seed(seed), int(index_offset))
        self.was_reset = True
        return self.observations, reset_infos(self.autoreset_mode, self.final_observations)

    def step(self, actions):
        """Writes `actions` into the actions buffer (unless it is that buffer),
        steps every env, and returns the shared buffers."""
        self.send(actions)
        return self.recv()

    def send(self, actions, env_id=None):
        """Steps every env at once: in-process there is nothing to overlap.
        With `recv`, the interface of the multiprocessing backend's async mode
        (whose batch is all envs here: `batch_size == num_envs`; `env_id`, if
        given, must name them all)."""
        if not self.was_reset:
            self.check_reset("step")
        if env_id is not None:
            check_env_id(env_id, range(self.num_envs))
        if actions is not self.actions:
            write_actions(self.single_action_space, self.actions, actions)
        self.c_envs.step()

    def recv(self):
        """The buffers after the last `send`, and the step's infos: none in
        NEXT_STEP; in SAME_STEP the dense final_observations, and on a step
        where an episode ended, Gymnasium's keys (see puffer.envs.step_infos)."""
        # A new infos dict each step: Gymnasium's wrappers add keys to it.
        return self.observations, self.rewards, self.terminals, self.truncations, self.step_infos()

    def log(self):
        """Mean episode return, length and score over the episodes finished
        since the last call ({} if none), and the count as `episodes`."""
        self.check_open()
        return self.c_envs.log()

    def close(self):
        self.c_envs = None
        self.closed, self.was_reset = True, False

    def check_open(self):
        if self.closed:
            raise RuntimeError(f"this {type(self).__name__} env is closed: make a new one")

    def check_reset(self, what):
        """A RuntimeError unless the env is open and has been reset."""
        self.check_open()
        if not self.was_reset:
            raise RuntimeError(f"{type(self).__name__}.{what}() before reset(): call reset(seed=...) first")



# --------------------------------------------------------------------------
# Multiprocessing backend
# --------------------------------------------------------------------------
#
# The parent owns every buffer in shared memory (one `RawArray` per buffer).
# Worker w runs `cls(num_envs=k, buffers=<rows [w*k, (w+1)*k) of each buffer>)`,
# so its C envs read actions from and write observations straight into the
# parent's arrays: nothing is copied, only tiny messages cross the pipes.
#
# Protocol, over one duplex Pipe per worker: the parent sends b"s" (step) or a
# pickled (command, argument) tuple; the worker answers each with b"" (done,
# nothing to return) or a pickled ("ok", value) / ("error", exception, its
# formatted traceback). Workers never exit on their own: one that does, died.

_STEP = b"s"
_DONE = b""


def _shared_view(raw, shape, dtype):
    """A numpy array of `shape` and `dtype` over the shared block `raw`."""
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)


def _error_reply(exc):
    """The pickled reply carrying `exc`, or a RuntimeError with its text when
    `exc` does not survive a pickle round trip."""
    text = "".join(traceback.format_exception(exc))
    try:
        payload = pickle.dumps(("error", exc, text))
        pickle.loads(payload)
        return payload
    except Exception:
        return pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), text))


def _worker_main(index, cls, num_envs, first_env, env_kwargs, autoreset_mode, raws, specs, conn):
    """Body of worker `index`: builds its envs over its rows of the shared
    buffers, then serves commands until told to close or the parent goes away."""
    # Ctrl-C goes to the whole process group: let the parent handle it and
    # close the workers, rather than have them die in the middle of a step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        rows = slice(first_env, first_env + num_envs)
        buffers = SimpleNamespace(**{name: _shared_view(raws[name], shape, dtype)[rows]
                                     for name, (shape, dtype) in specs.items()})
        env = cls(num_envs=num_envs, buffers=buffers, **env_kwargs)
        env.set_autoreset_mode(autoreset_mode)
    except BaseException as exc:
        conn.send_bytes(_error_reply(exc))
        # Stay up until the parent closes us (to it, a worker that exits died).
        try:
            while conn.recv_bytes() != pickle.dumps(("close", None)):
                pass
        except (EOFError, OSError):
            pass
        return
    conn.send_bytes(_DONE)
    actions = env.actions
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the parent is gone
            break
        try:
            if message == _STEP:
                env.step(actions)
                reply = _DONE
            else:
                command, argument = pickle.loads(message)
                if command == "reset":
                    seed, index_offset = argument
                    env.reset(seed=seed, index_offset=index_offset + first_env)
                    reply = _DONE
                elif command == "log":
                    reply = pickle.dumps(("ok", env.log()))
                elif command == "close":
                    break
                else:
                    raise RuntimeError(f"unknown command {command!r}")
        except Exception as exc:
            reply = _error_reply(exc)
        try:
            conn.send_bytes(reply)
        except (EOFError, OSError):
            break
    try:
        env.close()
    finally:
        conn.close()


def _shutdown_workers(processes, connections, grace=1.0):
    """Asks every worker to close, waits up to `grace` seconds, then terminates
    (and at last kills) those still running. Safe to call more than once."""
    for conn in connections:
        try:
            conn.send_bytes(pickle.dumps(("close", None)))
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.join(max(0.0, deadline - time.monotonic()))
        except (AssertionError, ValueError):  # never started, or already closed
            pass
    for process in processes:
        try:
            if process.is_alive():
                process.terminate()
                process.join(grace)
            if process.is_alive():
                process.kill()
                process.join()
        except (AssertionError, ValueError):
            pass
    for conn in connections:
        conn.close()


def _default_num_workers(num_envs):
    """The largest divisor of `num_envs` that is at most the number of CPUs."""
    cap = min(os.cpu_count() or 1, num_envs)
    return max(w for w in range(1, cap + 1) if num_envs % w == 0)


def _exit_description(exitcode):
    if exitcode is None:
        return "an unknown exit code"
    if exitcode < 0:
        try:
            return f"exit code {exitcode} (killed by {signal.Signals(-exitcode).name})"
        except ValueError:
            pass
    return f"exit code {exitcode}"


def _context(start_method):
    if start_method is None:
        start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(start_method)


def _preload_forkserver(ctx, modules):
    """Has the fork server import `modules` (numpy, gymnasium, the env) once, so
    each worker it forks starts in milliseconds instead of re-importing them.
    Only takes effect if the fork server has not started yet; keeps whatever
    the program asked to preload before (by default '__main__')."""
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver
    current = list(getattr(getattr(forkserver, "_forkserver", None), "_preload_modules", None)
                   or ["__main__"])
    missing = [m for m in modules if m not in current]
    if missing:
        ctx.set_forkserver_preload(current + missing)


class Multiprocessing(VectorEnv):
    """`num_envs` envs of class `cls` split evenly over `num_workers` processes.

    Same interface as `PufferEnv` (a Gymnasium `VectorEnv`: reset, step,
    log, close and the buffers, which live in shared memory), plus `send(actions)` / `recv()` to step
    asynchronously: `send` validates the actions, writes them to the shared
    actions buffer and returns at once; `recv` waits for the workers and
    returns what `step` returns. `step(actions)` is `send(actions)` then `recv()`.

    Async mode, EnvPool style: with `batch_size` < `num_envs` the envs form
    num_envs / batch_size batches of whole workers, and `send` / `recv` take
    one batch at a time, so the policy computes actions for one batch while
    the workers of the others step. After `reset` every batch awaits actions;
    `send(actions)` (batch_size rows) starts the batch that has waited
    longest, and `recv()` returns, as views of the shared buffers (no copy, no
    allocation), the batch that has stepped longest, waiting for it if
    needed. Batches go round in a fixed order (rows [0, batch_size) first),
    not first-come: a step's data never depends on timing, so a seed still
    gives the same trajectories, and every batch is a contiguous slice.

    Worker w holds envs [w*k, (w+1)*k), k = num_envs / num_workers, and resets
    them with index_offset w*k, so a seed gives bit-identical trajectories
    whatever the number of workers (and the same as the serial backend).

    Actions are checked in the parent, whole batch, before any worker steps.
    An exception raised in a worker (a bad option in the env constructor) is
    raised again in the parent, same type and message, with a note naming the
    worker; the backend stays usable. A worker that dies raises RuntimeError naming it and
    its exit code, and a worker silent for `timeout` seconds (None: wait
    forever) raises TimeoutError; both close the backend.

    start_method: "forkserver" by default where available (else "spawn"):
    workers are forked from a clean server process, not from the caller, so
    threads and state of a parent that has loaded torch (OpenMP pools, CUDA)
    are never forked, yet after the first the workers start in milliseconds.
    "spawn" also works; "fork" is faster still but unsafe with torch loaded.
    As with spawn, workers import the main module (once, in the fork server),
    so a script must guard its entry point with `if __name__ == "__main__":`,
    and `cls` must be importable by name (not defined in a notebook).
    `start_method` is not reachable through `puffer.make`.
    """

    def __init__(self, cls, num_envs=1, num_workers=None, env_kwargs=None, timeout=None,
                 start_method=None, batch_size=None, autoreset_mode=SAME_STEP):
        self.closed = True  # until the workers are up; close() is then a no-op
        self.num_envs = check_num_envs(num_envs)
        if num_workers is None:
            num_workers = _default_num_workers(self.num_envs)
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) \
                or num_workers < 1:
            raise ValueError(f"num_workers must be an integer of at least 1, got {num_workers!r}")
        num_workers = int(num_workers)
        if num_workers > self.num_envs:
            raise ValueError(f"num_workers ({num_workers}) must not exceed num_envs ({self.num_envs})")
        if self.num_envs % num_workers:
            raise ValueError(f"num_envs ({self.num_envs}) must be a multiple of num_workers "
                             f"({num_workers})")
        envs_per_worker = self.num_envs // num_workers
        if batch_size is None:
            batch_size = self.num_envs
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1 or batch_size % envs_per_worker or self.num_envs % batch_size:
            raise ValueError(f"batch_size must divide num_envs ({self.num_envs}) and be a multiple of "
                             f"the envs per worker ({envs_per_worker}): whole workers per batch, "
                             f"got {batch_size!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        env_kwargs = dict(env_kwargs or {})
        self.num_workers = num_workers
        self.envs_per_worker = envs_per_worker
        self.batch_size = int(batch_size)
        self.num_batches = self.num_envs // self.batch_size
        self.timeout = timeout
        self.env_class = cls

        # One env in-process tells the spaces (they may depend on the options)
        # and raises bad options here, before any process starts.
        probe = cls(num_envs=1, **env_kwargs)
        self.single_observation_space = probe.single_observation_space
        self.single_action_space = probe.single_action_space
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**probe.metadata, "autoreset_mode": self.autoreset_mode}
        probe.close()
        del probe

        ctx = _context(start_method)
        _preload_forkserver(ctx, ["puffer.vector", cls.__module__])
        blocks = {}  # id(array) -> its shared block

        def zeros(shape, dtype):
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            raw = ctx.RawArray("b", max(nbytes, 1))  # zero-filled
            array = _shared_view(raw, shape, dtype)
            blocks[id(array)] = raw
            return array

        check_memory(self.single_observation_space, self.single_action_space, self.num_envs)
        buffers = allocate_buffers(self.single_observation_space, self.single_action_space,
                                   self.num_envs, zeros=zeros)
        specs = buffer_specs(self.single_observation_space, self.single_action_space, self.num_envs)
        raws = {name: blocks[id(getattr(buffers, name))] for name in specs}
        for name in specs:
            setattr(self, name, getattr(buffers, name))
        # EnvPool's convention: the spaces describe what one send/recv takes.
        self.observation_space = batch_space(self.single_observation_space, self.batch_size)
        self.action_space = batch_space(self.single_action_space, self.batch_size)
        # Each batch's rows, workers and what recv() returns for it, made once:
        # the buffers themselves when one batch holds every env, else views.
        workers_per_batch = self.batch_size // envs_per_worker
        self._batch_rows = [slice(b * self.batch_size, (b + 1) * self.batch_size)
                            for b in range(self.num_batches)]
        self._batch_workers = [range(b * workers_per_batch, (b + 1) * workers_per_batch)
                               for b in range(self.num_batches)]
        names = ("observations", "rewards", "terminals", "truncations", "final_observations")
        self._batch_views = [tuple(getattr(self, name) for name in names)] if self.num_batches == 1 else [
            tuple(getattr(self, name)[rows] for name in names) for rows in self._batch_rows]
        batch_ids = [np.arange(rows.start, rows.stop) for rows in self._batch_rows]
        for ids in batch_ids:
            ids.flags.writeable = False  # handed out every step
        self._batch_infos = [step_infos_maker(terminals, truncations, final, self.autoreset_mode, ids)
                             for (_, _, terminals, truncations, final), ids in zip(self._batch_views, batch_ids)]
        self.was_reset = False
        self._awaiting = deque(range(self.num_batches))  # batches whose actions are due, oldest first
        self._stepping = deque()                          # batches stepping, oldest first

        self._processes, self._connections = [], []
        self._finalizer = weakref.finalize(self, _shutdown_workers, self._processes,
                                           self._connections)
        self.closed = False
        self._pending = {}    # worker -> None while a reply is owed
        self._operation = None  # a reset, log or init in progress
        try:
            for w in range(num_workers):
                parent_end, child_end = ctx.Pipe(duplex=True)
                process = ctx.Process(
                    target=_worker_main, name=f"puffer-{cls.__name__}-worker-{w}", daemon=True,
                    args=(w, cls, self.envs_per_worker, w * self.envs_per_worker, env_kwargs, self.autoreset_mode,
                          raws, specs, child_end))
                self._connections.append(parent_end)
                process.start()
                self._processes.append(process)
                child_end.close()
            self._begin("init", range(num_workers))
            self._finish()
        except BaseException:
            self.close()
            raise

    # -- the PufferEnv interface ------------------------------------------

    def reset(self, seed=None, options=None, index_offset=0):
        """Resets every env; env i draws from (seed, index_offset + i) as in the
        serial backend. `options` is Gymnasium's argument: puffer envs take
        theirs when made."""
        if options:
            raise ValueError(f"Multiprocessing.reset takes no options (an env's options are "
                             f"given when it is made), got {options!r}")
        self._check_idle("reset")
        self._broadcast(pickle.dumps(("reset", (resolve_seed(seed), int(index_offset)))), "reset")
        self._finish()
        self._awaiting = deque(range(self.num_batches))
        self.was_reset = True
        return self.observations, reset_infos(self.autoreset_mode, self.final_observations)

    def async_reset(self, seed=None, options=None):
        """EnvPool's: resets every env, after which each recv() returns a
        batch's first observations (rewards 0), and then send() its actions."""
        self.reset(seed=seed, options=options)
        self._stepping, self._awaiting = self._awaiting, deque()

    def step(self, actions):
        """send(actions), then recv()."""
        self.send(actions)
        return self.recv()

    def send(self, actions, env_id=None):
        """Validates `actions` (batch_size rows), writes them into the batch's
        rows of the shared actions buffer (unless they are that buffer) and
        starts the batch's workers stepping. `env_id`, EnvPool's argument,
        may name the batch's envs (those recv() gave it); batches go round in
        a fixed order, so it can only confirm them."""
        self._check_open()
        if not self.was_reset:
            raise RuntimeError("Multiprocessing.step() before reset(): call reset(seed=...) first")
        if self._operation is not None:
            self._finish()  # a reset or log cut short by an interrupt (Ctrl-C)
        if not self._awaiting:
            raise RuntimeError("cannot send(): every batch is stepping; call recv() first")
        batch = self._awaiting[0]
        rows = self._batch_rows[batch]
        if env_id is not None:
            check_env_id(env_id, range(rows.start, rows.stop))
        if actions is not self.actions:
            write_actions(self.single_action_space, self.actions[rows], actions)
        # All of the batch is checked before any worker steps, as in PufferEnv.
        check_action_values(self.single_action_space, self.actions[rows])
        self._awaiting.popleft()
        self._stepping.append(batch)
        for w in self._batch_workers[batch]:
            self._send_to(w, _STEP)

    def recv(self):
        """Waits for the batch that has stepped longest and returns its
        observations, rewards, terminals, truncations and infos, whose
        "env_id" (as EnvPool's) gives the batch's rows."""
        self._check_open()
        if not self._stepping:
            raise RuntimeError("recv() called without a pending send()")
        batch = self._stepping[0]
        self._finish(self._batch_workers[batch])
        self._awaiting.append(self._stepping.popleft())
        observations, rewards, terminals, truncations, _ = self._batch_views[batch]
        return observations, rewards, terminals, truncations, self._batch_infos[batch]()

    def log(self):
        """The workers' episode means merged, weighted by their episode counts:
        the keys of PufferEnv.log, {} when no episode finished since the last call."""
        self._check_open()
        self._finish()  # steps in flight (and an interrupted call) complete first
        self._broadcast(pickle.dumps(("log", None)), "log")
        logs = [entry for entry in self._finish() if entry]
        episodes = sum(entry["episodes"] for entry in logs)
        if not episodes:
            return {}
        merged = {key: sum(entry[key] * entry["episodes"] for entry in logs) / episodes
                  for key in logs[0] if key != "episodes"}
        merged["episodes"] = int(episodes)
        return merged

    def close(self):
        """Stops and joins the workers and drops the shared buffers (their
        memory is freed once no array you kept refers to it). Idempotent."""
        if getattr(self, "closed", True):
            return
        self.closed = True
        self._pending = {}
        self._operation = None
        self._stepping.clear()
        self._finalizer()
        for name in ("observations", "actions", "rewards", "terminals", "truncations",
                     "final_observations"):
            setattr(self, name, None)
        self._batch_views = self._batch_infos = []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- plumbing ------------------------------------------------------------

    def _check_open(self):
        if self.closed:
            raise RuntimeError("this Multiprocessing env is closed")

    def _check_idle(self, what):
        self._check_open()
        if self._stepping:
            raise RuntimeError(f"cannot {what}() while a step is pending: call recv() first")
        if self._operation is not None:
            # A reset or log cut short by an interrupt (Ctrl-C): finish it first.
            self._finish()

    def _begin(self, operation, workers):
        self._operation = operation
        self._pending = {w: None for w in workers}
        self._replies = [None] * self.num_workers
        self._errors = []

    def _broadcast(self, message, operation):
        self._begin(operation, ())
        for w in range(self.num_workers):
            self._send_to(w, message)

    def _send_to(self, w, message):
        try:
            self._connections[w].send_bytes(message)
        except OSError:
            pass  # the worker is gone: _finish finds it and says how it ended
        self._pending[w] = None

    def _finish(self, workers=None):
        """Collects the pending replies of `workers` (default: all); raises the
        first worker error once they have answered, or RuntimeError /
        TimeoutError if any worker dies / these hang. An interrupt (Ctrl-C)
        leaves the rest pending for the next call."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        conn_worker = {conn: w for w, conn in enumerate(self._connections)}
        sentinel_worker = {process.sentinel: w for w, process in enumerate(self._processes)}
        awaited = set(self._pending) if workers is None else set(workers) & set(self._pending)
        while awaited:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            waiting = [self._connections[w] for w in awaited]
            ready = mp_connection.wait(waiting + list(sentinel_worker), remaining)
            if not ready:
                self._fail(TimeoutError, f"no reply within {self.timeout} s from multiprocessing "
                           f"worker(s) {sorted(awaited)} during {self._operation or 'step'}")
            for obj in ready:
                if obj not in conn_worker or conn_worker[obj] not in awaited:
                    continue  # a sentinel (dealt with below), or a reply for a later call
                w = conn_worker[obj]
                try:
                    data = obj.recv_bytes()
                except (EOFError, OSError):
                    self._fail_dead(w)
                del self._pending[w]
                awaited.discard(w)
                if data != _DONE:
                    status, value, *remote_traceback = pickle.loads(data)
                    if status == "ok":
                        self._replies[w] = value
                    else:
                        self._errors.append((w, value, remote_traceback[0]))
            for obj in ready:
                if obj in sentinel_worker:
                    self._fail_dead(sentinel_worker[obj])
        if not self._pending:
            self._operation = None
        if self._errors:
            self._errors.sort(key=lambda error: error[0])
            w, exc, remote_traceback = self._errors[0]
            first = w * self.envs_per_worker
            exc.add_note(f"raised in multiprocessing worker {w} (envs {first}:"
                         f"{first + self.envs_per_worker}):\n{remote_traceback.rstrip()}")
            if len(self._errors) > 1:
                exc.add_note(f"{len(self._errors) - 1} other worker(s) raised too")
            self._errors = []
            raise exc
        return self._replies

    def _fail_dead(self, w):
        process = self._processes[w]
        process.join(1.0)
        first = w * self.envs_per_worker
        self._fail(RuntimeError, f"multiprocessing worker {w} (pid {process.pid}, envs {first}:"
                   f"{first + self.envs_per_worker}) died with {_exit_description(process.exitcode)}"
                   f" during {self._operation or 'step'} (its traceback, if it printed one, is on stderr);"
                   f" the env is closed")

    def _fail(self, exc_type, message):
        self.close()
        raise exc_type(message)
