"""Shared machinery of the benchmark suite: the calibration loops and the
`measure` fixture that times a benchmark interleaved with its calibration.

Every figure is a speed (env steps/s, GAE elements/s, training SPS). Next to
it the suite records the speed of a fixed reference loop, timed right before
every timed round of the benchmark (pytest-benchmark's pedantic `setup`
hook), so both see the same machine in the same state. benchmarks/check.py
divides one by the other: a normalised figure, in which the speed of the
machine and the load on it cancel to first order.

Both speeds come from the fastest round (the minimum time): on a shared
machine, noise only ever adds time, so the fastest of many short rounds is the
best estimate of the undisturbed speed, for the benchmark and its yardstick alike.

Three yardsticks, each for the figures whose time goes to the same kind of work:
  c      puffer.trainer.calibrate.Reference: a compiled toy env loop
         (trainer/calibrate.pyx) -- env stepping at many envs, GAE;
  py     a fixed Python loop of attribute look-ups, a call and a tiny numpy
         copy -- steps whose time goes to the Python and numpy calls around
         the C loop (a few dozen envs or fewer) and the multiprocessing
         backend's steps (Python and system calls; the time its workers take
         to wake up is the one part no yardstick here follows: it varies by
         up to 4x with where the scheduler puts them, so echo round trips
         over pipes made a worse yardstick than none);
  torch  a fixed tiny MLP on one thread: batched inference and a minibatch
         update with Adam -- the training run.
"""
import time

import numpy as np
import pytest

ROUNDS = 200  # timed rounds per benchmark (each ~2 ms; see test_benchmarks.py)
WARMUP_ROUNDS = 5


# -- the yardsticks ------------------------------------------------------------
# Each returns (run, units of work per run, close). Never change what they
# compute without rerunning `python benchmarks/check.py --update`: the
# baseline is expressed in their units.

def _nothing():
    pass


def c_reference():
    from puffer.trainer.calibrate import Reference
    reference = Reference(4096)
    steps = 24
    return (lambda: reference.run(steps)), steps * reference.num_bodies, _nothing


class _Slot:
    def __init__(self):
        self.target = np.zeros(1, np.int32)


def _py_unit(slot, values):
    if values is not slot.target:
        values = np.asarray(values)
        if values.shape != slot.target.shape or values.dtype.kind not in "iu":
            raise ValueError("unreachable")
        np.copyto(slot.target, values, casting="unsafe")
    return slot.target


def py_reference():
    slot, values, calls = _Slot(), np.ones(1, np.int32), 1000

    def run():
        for _ in range(calls):
            _py_unit(slot, values)
    return run, calls, _nothing


def torch_reference():
    import torch
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                  torch.nn.Tanh(), torch.nn.Linear(64, 3))
        observations, inputs, targets = torch.randn(128, 4), torch.randn(1024, 4), torch.randn(1024, 3)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1e-5)

    def run():
        with torch.inference_mode():
            for _ in range(8):
                net(observations)[:, :2].softmax(-1).argmax(-1)
        loss = (net(inputs) - targets).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        optimizer.step()
    return run, 1, _nothing


REFERENCES = {"c": c_reference, "py": py_reference, "torch": torch_reference}


class Calibration:
    """One yardstick: call it to time `repeats` runs of it with `clock`;
    `speed` is the work per second of the fastest run so far."""

    def __init__(self, kind, repeats=1, clock=time.perf_counter):
        self.kind, self.repeats, self.clock = kind, repeats, clock
        self.run, self.work, self.close = REFERENCES[kind]()
        self.times = []

    def __call__(self):
        for _ in range(self.repeats):
            start = self.clock()
            self.run()
            self.times.append(self.clock() - start)

    def speed(self):
        return self.work / min(self.times)


# -- the fixtures ----------------------------------------------------------------

@pytest.fixture
def calibration():
    """The Calibration class, for a benchmark that interleaves a calibration
    with its work itself (and passes it to `measure`)."""
    return Calibration


@pytest.fixture
def measure(benchmark):
    """measure(target, work, calibration, figure, unit, rounds=ROUNDS, ...):
    times `target` (one round doing `work` units of work) over `rounds`
    rounds after `warmup_rounds`, running the calibration `calibration` (a
    kind, "c", "py" or "torch", or a Calibration) right before each, and
    records in the benchmark's extra_info what benchmarks/check.py needs: the
    figure's name and unit, the work per round, the calibration's kind and
    speed. `speed`, when given (a number or a function called afterwards),
    replaces work / fastest round as the figure's speed: for a figure the
    target measures itself."""
    def run(target, work, calibration, figure, unit, rounds=ROUNDS,
            warmup_rounds=WARMUP_ROUNDS, speed=None):
        reference = calibration if isinstance(calibration, Calibration) else Calibration(calibration)
        try:
            benchmark.pedantic(target, setup=reference, rounds=rounds, warmup_rounds=warmup_rounds)
        finally:
            reference.close()
        benchmark.extra_info.update({
            "figure": figure, "unit": unit, "work": work, "calibration": reference.kind,
            "calibration_speed": reference.speed(), "calibration_work": reference.work,
            "calibration_times": reference.times,
        })
        if speed is not None:
            benchmark.extra_info["speed"] = speed() if callable(speed) else speed
    return run
