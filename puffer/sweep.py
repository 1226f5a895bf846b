"""`puffer sweep ENV`: a hyperparameter search with Optuna for two objectives
at once, the score (a metric at the trial's end, maximized) and the wall-clock
seconds until that metric first reaches a target (minimized). The result is
the Pareto front: no trial on it is beaten on both.

- The search space is the [sweep.space] of the env's config file (or else the
  defaults'); [sweep] holds the settings (configs/defaults.toml names them).
- A trial trains with its sampled values over the env's config, a run on
  each of sweep.seeds seeds, each for sweep.trial_seconds or
  train.total_steps, whichever ends first; its objectives are the medians.
- Pruning: from sweep.prune_after of trial_seconds on, a trial that has not
  reached the target is stopped where its metric falls below the median of
  the completed trials' learning curves at the same second (Optuna's own
  pruners take single-objective studies only).
- The study lives in SQLite: each trial is written as it ends, in a
  transaction, so a kill loses at most the trials then running, and the same
  command continues the sweep. One sweep at a time holds a study (a lock file
  beside the database): what it finds still running is what a killed sweep
  left, and is marked failed.
- Trials run in parallel, `jobs` worker processes over the same study. A
  queued trial (the baseline) goes to one of them: they claim it under a
  second lock file, as SQLite has no row locks.
- A new study's first trial is the config as it stands (each swept key's
  own value, where it lies in the space), so the front shows the gain.
"""
import contextlib
import copy
import fcntl
import io
import json
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import puffer
from puffer.config import (config_files, flatten, load_config, read_config_file, read_toml, set_key,
                           training_sections)

KINDS = ("log", "linear", "int", "choice")
# The study's attributes that its trials must share: a rerun with others would
# mix trials of different objectives or of different fixed keys into one front.
SHARED = ("env_name", "metric", "target", "trial_seconds", "seeds", "fixed")
CURVE_POINTS = 200  # the most points of a trial's learning curve that are kept


def load_sweep(env_name, overrides=None, config_file=None):
    """(settings, space, space_source) of `env_name`'s sweep: the [sweep]
    keys of the defaults, the env's file, `config_file` and `overrides`
    ("sweep.key" -> value), and the last [sweep.space] among those files."""
    defaults = read_toml("defaults")["sweep"]
    config = {"sweep": {k: v for k, v in defaults.items() if k != "space"}}
    space, space_source = defaults["space"], "configs/defaults.toml"
    for source, values in config_files(env_name, config_file) + [("the command line", {"sweep": overrides or {}})]:
        for key, value in values.get("sweep", {}).items():
            if key == "space":
                space, space_source = value, source
            else:
                set_key(config, f"sweep.{key}", value, source)
    settings = config["sweep"]
    if settings["target"] == 0.0:
        solved_at = puffer.env_record(env_name).get("solved_at") if not env_name.startswith(puffer.GYM_PREFIX) else None
        if settings["metric"] != "mean_return_100" or solved_at is None:
            raise ValueError(f"set sweep.target (in [sweep] of a config file, or --sweep.target VALUE): 0 stands for "
                             f"the env's solved_at, a mean_return_100 that {env_name} does not declare in puffer.ENVS"
                             if solved_at is None else
                             f"set sweep.target for sweep.metric {settings['metric']!r}: 0 stands for the env's "
                             "solved_at, a mean_return_100")
        settings["target"] = solved_at
    return settings, space, space_source


def check_space(space, source, base_config):
    """A ValueError naming the key and what is allowed, for any entry of
    `space` that is not one of KINDS over values its config key accepts."""
    if not isinstance(space, dict) or not space:
        raise ValueError(f"[sweep.space] in {source} must name at least one key, as "
                         '"train.learning_rate" = {log = [1e-4, 1e-2]}')
    trial_config = copy.deepcopy(base_config)  # set_key checks each value by setting it
    for dotted, spec in space.items():
        where = f"sweep space key {dotted!r} in {source}"
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise ValueError(f"{where} must be one of {{log = [low, high]}}, {{linear = [low, high]}}, "
                             f"{{int = [low, high]}} or {{choice = [a, b, ...]}}, got {spec!r}")
        (kind, values), = spec.items()
        section, _, key = dotted.partition(".")
        default = base_config.get(section, {}).get(key)
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: {kind} takes a list of values, got {values!r}")
        if kind != "choice":
            if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{where}: {kind} takes [low, high], two numbers, got {values!r}")
            low, high = values
            if not low < high:
                raise ValueError(f"{where}: {kind} = [{low}, {high}]: low must be below high")
            if kind == "log" and low <= 0:
                raise ValueError(f"{where}: log = [{low}, {high}]: a log range must be above 0")
            if kind == "int" and not all(isinstance(v, int) for v in values):
                raise ValueError(f"{where}: int takes [low, high], two integers, got {values!r}")
            if kind in ("log", "linear") and isinstance(default, int) and not isinstance(default, bool):
                raise ValueError(f"{where}: {dotted} takes integers: use {{int = [low, high]}} or {{choice = [...]}}")
        for value in values:  # the key exists, and each end (each choice) is of its type and in its range
            set_key(trial_config, dotted, value, f"{source} ([sweep.space])")


def baseline(space, config):
    """The config's own value of each key of `space` that lies in it."""
    values = {}
    for dotted, spec in space.items():
        (kind, bounds), = spec.items()
        section, _, key = dotted.partition(".")
        value = config[section][key]
        if value in bounds if kind == "choice" else bounds[0] <= value <= bounds[1]:
            values[dotted] = value
    return values


def suggest(trial, space):
    """The trial's value of each key of `space` ("section.key" -> value)."""
    params = {}
    for dotted, spec in space.items():
        (kind, values), = spec.items()
        if kind == "choice":
            params[dotted] = trial.suggest_categorical(dotted, values)
        elif kind == "int":
            params[dotted] = trial.suggest_int(dotted, *values)
        else:
            params[dotted] = trial.suggest_float(dotted, *values, log=kind == "log")
    return params


def default_storage(env_name):
    return f"sqlite:///runs/sweep-{env_name}.db"


def sqlite_path(storage):
    """The database file of a sqlite:/// URL; None for another URL."""
    return Path(storage[len("sqlite:///"):]) if storage.startswith("sqlite:///") else None


def storage_url(study):
    """A --show/--apply STUDY argument (a URL, or a .db file) as a URL."""
    return study if "://" in study else f"sqlite:///{study}"


def open_storage(url, create):
    """The RDB storage at `url`; with create=False, a clear error unless an
    Optuna study database is already there (Optuna would make one)."""
    import optuna
    import sqlalchemy.exc
    path = sqlite_path(url)
    if not create and path is not None and not path.is_file():
        raise FileNotFoundError(f"no study database at {path}")
    for attempt in range(3):
        try:
            # Parallel workers write to one file: wait for SQLite's lock rather than fail on it.
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}} if path else None,
                                                 skip_table_creation=not create)
            if path:
                storage.set_trial_state_values = claims_one_at_a_time(storage.set_trial_state_values, path)
            return storage
        except sqlalchemy.exc.IntegrityError as error:
            # Every opener stamps a new file's schema version; two at once (a sweep
            # starting, a --show) collide on it, and a second try finds it stamped.
            last_error = error
            time.sleep(0.1)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
            last_error = error
            break
    raise ValueError(f"{url} is not a readable Optuna study database: {last_error}") from None


def claims_one_at_a_time(set_trial_state_values, path):
    """The storage's set_trial_state_values, with the claim of a queued trial
    (WAITING to RUNNING) made under an exclusive lock on FILE.queue.lock.
    Optuna claims one by reading that it is still WAITING, then writing
    RUNNING, and relies on a row lock (SELECT ... FOR UPDATE) that SQLite
    ignores: two workers could both read WAITING and both run the trial, and
    the second to finish would die on "Cannot tell a COMPLETE trial". Other
    state changes are the trial's own worker's, and need no lock."""
    from optuna.trial import TrialState

    def set_state(trial_id, state, values=None):
        if state != TrialState.RUNNING:
            return set_trial_state_values(trial_id, state, values)
        with open(f"{path}.queue.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # until it closes, after the claim's commit
            return set_trial_state_values(trial_id, state, values)
    return set_state


def load_study(url, study_name=None, sampler=None):
    """The study `study_name` at `url` (the only one there, if not named)."""
    import optuna
    import sqlalchemy.exc
    storage = open_storage(url, create=False)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        raise ValueError(f"{url} is not a readable Optuna study database: {error}") from None
    if study_name is None:
        if len(names) != 1:
            raise ValueError(f"{url} holds {len(names)} studies ({', '.join(names) or 'none'}): name one with --study")
        study_name = names[0]
    if study_name not in names:
        raise ValueError(f"{url} holds no study {study_name!r}; it holds: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)


def counted(study):
    """Trials that count towards --trials: those completed, pruned or failed
    by their config, and those under way. Not those a killed sweep left."""
    from optuna.trial import TrialState
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs) for t in study.get_trials(deepcopy=False))


class StudyLock:
    """The one sweep that runs a study in a sqlite file: an exclusive lock on
    FILE.lock, released by the OS however the process ends."""

    def __init__(self, path):
        self.file = open(f"{path}.lock", "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise ValueError(f"another puffer sweep is running the study in {path}; wait for it or "
                             "stop it (a study is run by one sweep at a time)") from None

    def release(self):
        self.file.close()


def sweep(env_name, trials, storage=None, study_name=None, jobs=None, budget_s=None, overrides=None,
          config_file=None, print_fn=print):
    """Runs (or continues) the sweep of `env_name` until its study holds
    `trials` trials, or `budget_s` seconds have passed; returns the study.
    `overrides` ("section.key" -> value): sweep.* keys set the sweep, any
    other stays fixed in every trial, as a `config_file`'s keys do."""
    import optuna
    from optuna.trial import TrialState
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    overrides = overrides or {}
    sweep_overrides = {k.partition(".")[2]: v for k, v in overrides.items() if k.startswith("sweep.")}
    train_overrides = {k: v for k, v in overrides.items() if not k.startswith("sweep.")}
    base_config = load_config(env_name, train_overrides, config_file)  # checks the fixed keys
    settings, space, space_source = load_sweep(env_name, sweep_overrides, config_file)
    check_space(space, space_source, base_config)
    file_values = read_config_file(config_file) if config_file else {}
    given = {**flatten(training_sections(file_values)), **train_overrides}
    fixed = {dotted: base_config[dotted.partition(".")[0]][dotted.partition(".")[2]] for dotted in given}
    if trials < 1:
        raise ValueError(f"--trials must be at least 1, got {trials}")
    jobs = jobs or os.cpu_count()
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    storage = storage or default_storage(env_name)
    study_name = study_name or env_name
    path = sqlite_path(storage)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
    lock = StudyLock(path) if path else None
    try:
        shared = {"env_name": env_name, "metric": settings["metric"], "target": settings["target"],
                  "trial_seconds": settings["trial_seconds"], "seeds": settings["seeds"], "fixed": fixed}
        rdb = open_storage(storage, create=True)
        study = optuna.create_study(study_name=study_name, storage=rdb, directions=["maximize", "minimize"],
                                    load_if_exists=True)
        if study.user_attrs:
            differ = [k for k in SHARED if study.user_attrs.get(k) != shared[k]]
            if differ:
                raise ValueError(f"study {study_name!r} in {storage} was run with other " + ", ".join(
                    f"{k} ({study.user_attrs.get(k)!r}, now {shared[k]!r})" for k in differ) +
                    ": rerun with those, or start another study (--study NAME or --storage)")
        for key, value in {**shared, "space": space, "prune_after": settings["prune_after"],
                           "startup_trials": settings["startup_trials"]}.items():
            study.set_user_attr(key, value)
        if path:  # what is still running is what a killed sweep left
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                rdb.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                print_fn(f"trial {trial.number} was left running by a stopped sweep: marked failed")
        remaining = trials - counted(study)
        if remaining <= 0:
            print_fn(f"study {study_name!r} already holds {trials - remaining} trials: "
                     f"raise --trials to run more")
            return study
        if not study.get_trials(deepcopy=False):
            # The first trial is the config as it stands: the front shows what a sweep gained over it.
            study.enqueue_trial(baseline(space, base_config))
        threads = torch_threads(base_config["train"]["torch_threads"], jobs)
        workers = min(jobs, remaining)
        print_fn(f"sweeping {env_name}: {remaining} trials to go of {trials}, {workers} at a time "
                 f"({threads} torch thread{'s' * (threads > 1)} each); score: {settings['metric']} at a "
                 f"trial's end; time: seconds until it reaches {settings['target']:g}; study "
                 f"{study_name!r} in {storage}")
        deadline = None if budget_s is None else time.time() + budget_s
        args = (storage, study_name, trials, deadline, threads, settings["seed"])
        if workers == 1:
            run_worker(*args, 0)
        else:
            run_processes(args, workers)
    except KeyboardInterrupt:
        print_fn("\ninterrupted: the finished trials are saved; rerun the same command to continue")
        raise
    finally:
        if lock:
            lock.release()
    return load_study(storage, study_name)


def torch_threads(configured, jobs):
    """Torch threads per trial: the config's, unless `jobs` trials of them
    would oversubscribe the machine's cores."""
    cores = os.cpu_count() or 1
    return configured if configured * jobs <= cores else max(1, cores // jobs)


def run_processes(args, workers):
    """`workers` processes of run_worker; an error if any of them failed."""
    context = multiprocessing.get_context("spawn")  # no forked copies of torch's threads
    processes = [context.Process(target=run_worker, args=(*args, index), daemon=True) for index in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    finally:
        for process in processes:  # on Ctrl-C they got SIGINT too: Optuna marks their trials failed
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} sweep worker(s) failed (exit codes {failed}): see their errors above")


def run_worker(storage, study_name, trials, deadline, threads, seed, index):
    """One worker: trials of the study until it holds `trials` (or the deadline)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Each worker its own sampler seed; constant_liar keeps parallel workers
    # from sampling the same point while each other's trials run.
    sampler = optuna.samplers.TPESampler(seed=seed + index, constant_liar=True, n_startup_trials=5)
    study = load_study(storage, study_name, sampler)

    def stop_when_full(study, _):
        if counted(study) >= trials:
            study.stop()

    timeout = None if deadline is None else max(deadline - time.time(), 0.0)
    study.optimize(lambda trial: run_trial(trial, study, threads), timeout=timeout,
                   callbacks=[stop_when_full], catch=(TrialConfigError,))


class TrialConfigError(ValueError):
    """A trial whose sampled values make no valid config (say, minibatches
    that do not divide the envs): failed and counted, and the sweep goes on."""


def run_trial(trial, study, threads):
    """Trains one trial, a run on each of sweep.seeds seeds (train.seed,
    +1, ...), and returns the medians of their (score, seconds to target);
    prunes it where a run falls below the completed trials' runs on the same
    seed."""
    import optuna

    from puffer.trainer.ppo import train
    attrs = study.user_attrs
    params = suggest(trial, attrs["space"])
    overrides = {**attrs["fixed"], **params, "train.torch_threads": threads, "train.log_interval": 1e9,
                 "train.checkpoint_interval": 10**9}
    runs = []
    try:
        first_seed = load_config(attrs["env_name"], overrides)["train"]["seed"]
        for index in range(attrs["seeds"]):
            runs.append(TrialWatch(study, attrs, index))
            config = load_config(attrs["env_name"], {**overrides, "train.seed": first_seed + index})
            with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
                train(attrs["env_name"], config, run_dir, live=False, on_update=runs[-1])  # its line: ours says it
            if runs[-1].pruned:
                break
    except ValueError as error:
        trial.set_user_attr("error", str(error))
        print(f"trial {trial.number}: failed, its values make no valid config: {error}", flush=True)
        raise TrialConfigError(str(error)) from None
    score = statistics.median(-math.inf if run.last is None else run.last for run in runs)
    seconds = statistics.median(run.reached[0] if run.reached else math.inf for run in runs)
    steps = statistics.median(run.reached[1] if run.reached else math.inf for run in runs)
    for key, value in {"curves": [run.curve for run in runs], "score": score,
                       "seconds_to_target": None if math.isinf(seconds) else seconds,
                       "steps_to_target": None if math.isinf(steps) else int(steps)}.items():
        trial.set_user_attr(key, value)
    metric, values = attrs["metric"], ", ".join(f"{k.partition('.')[2]}={format_value(v)}" for k, v in params.items())
    of_seeds = f" (median of {len(runs)} seeds)" if len(runs) > 1 else ""
    if runs[-1].pruned:
        at, value, median, count = runs[-1].pruned
        print(f"trial {trial.number}: pruned at {at:.1f} s of seed {first_seed + len(runs) - 1}: {metric} "
              f"{format_value(value)} below the median {median:.4g} of {count} completed trials then ({values})",
              flush=True)
        raise optuna.TrialPruned()
    print(f"trial {trial.number}: {metric} {format_value(score)}, " +
          (f"{attrs['target']:g} reached after {seconds:.2f} s" if math.isfinite(seconds) else
           f"{attrs['target']:g} not reached") + f"{of_seeds} ({values})", flush=True)
    return score, seconds


class TrialWatch:
    """The trainer's on_update in a trial: keeps the metric's learning curve
    and when it first reached the target, and ends the run at the time
    limit, or prunes it below the median of the completed trials' runs on
    the same seed (the `index`-th) at that second."""

    def __init__(self, study, attrs, index=0):
        self.study, self.metric, self.target = study, attrs["metric"], attrs["target"]
        self.limit, self.prune_from = attrs["trial_seconds"], attrs["prune_after"] * attrs["trial_seconds"]
        self.startup_trials, self.index = attrs["startup_trials"], index
        self.curve, self.last, self.reached, self.pruned = [], None, None, None
        self.last_check = 0.0

    def __call__(self, metrics):
        from optuna.trial import TrialState
        seconds, value = metrics["wall_time"], metrics.get(self.metric)
        if value is not None:
            self.last = value
            if not self.curve or seconds - self.curve[-1][0] >= self.limit / CURVE_POINTS:
                self.curve.append((seconds, value))
            if self.reached is None and value >= self.target:
                self.reached = (seconds, metrics["global_step"])
        if seconds >= self.limit:
            return True
        if self.reached is not None or seconds < self.prune_from or seconds - self.last_check < 1.0:
            return False
        self.last_check = seconds  # a database read at most once a second
        others = values_at(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), seconds,
                           self.index)
        if len(others) < self.startup_trials:
            return False
        median = statistics.median(others)
        if value is None or value < median:
            self.pruned = (seconds, value, median, len(others))
            return True
        return False


def values_at(trials, seconds, index):
    """Each trial's value at `seconds` (its last point then) on the curve of
    its `index`-th run, for the trials whose curves have begun by then."""
    values = []
    for trial in trials:
        curves = trial.user_attrs.get("curves", [])
        before = [value for at, value in (curves[index] if index < len(curves) else []) if at <= seconds]
        if before:
            values.append(before[-1])
    return values


def format_value(value):
    return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def front(study):
    """The Pareto front, fastest first."""
    return sorted(study.best_trials, key=lambda t: (t.values[1], -t.values[0]))


def show(study_arg, study_name=None, out=None, print_fn=print):
    """Prints the Pareto front of the study and writes its plot; returns the
    plot's path."""
    from optuna.trial import TrialState
    url = storage_url(study_arg)
    study = load_study(url, study_name)
    attrs = study.user_attrs
    if not attrs:
        raise ValueError(f"study {study.study_name!r} at {url} was not written by puffer sweep")
    trials = study.get_trials(deepcopy=False)
    states = {state: sum(t.state == state for t in trials) for state in TrialState}
    print_fn(f"study {study.study_name!r} ({attrs['env_name']}): {states[TrialState.COMPLETE]} completed, "
             f"{states[TrialState.PRUNED]} pruned, {states[TrialState.FAIL]} failed trials")
    best = front(study)
    if not best:
        raise ValueError(f"study {study.study_name!r} has no completed trial yet")
    keys = list(attrs["space"])
    print_fn(f"Pareto front: {attrs['metric']} at a trial's end (higher is better) against seconds until it "
             f"reaches {attrs['target']:g} (lower is better)")
    print_fn(f"{'trial':>5} {'score':>9} {'seconds':>8} {'steps':>10}  " + "  ".join(k.partition('.')[2] for k in keys))
    for t in best:
        steps = t.user_attrs.get("steps_to_target")
        print_fn(f"{t.number:>5} {t.values[0]:>9.4g} {format_seconds(t.values[1]):>8} "
                 f"{format(steps, ',') if steps else 'n/a':>10}  " +
                 "  ".join(f"{format_value(t.params.get(k)):>{len(k.partition('.')[2])}}" for k in keys))
    from puffer.plot import plot_front
    path = sqlite_path(url)
    out = Path(out) if out else (path.with_suffix(".png") if path else Path(f"sweep-{study.study_name}.png"))
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    plot_front(completed, best, out, f"puffer sweep {attrs['env_name']}", attrs["metric"],
               f"seconds to {attrs['metric']} {attrs['target']:g}")
    print_fn(f"wrote {out}")
    return out


def format_seconds(seconds):
    return "never" if math.isinf(seconds) else f"{seconds:.2f}"


def apply(study_arg, trial_number=None, out=None, study_name=None, print_fn=print):
    """Writes the values of one trial (default: the fastest on the front to
    reach the target; the best score if none did), with the sweep's fixed
    keys, as a config file for `puffer train ENV --config FILE`; returns its
    path."""
    from optuna.trial import TrialState
    url = storage_url(study_arg)
    study = load_study(url, study_name)
    attrs = study.user_attrs
    if trial_number is None:
        best = front(study)
        if not best:
            raise ValueError(f"study {study.study_name!r} has no completed trial to apply")
        trial = best[0] if not math.isinf(best[0].values[1]) else max(best, key=lambda t: t.values[0])
    else:
        trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
        if trial_number not in trials:
            raise ValueError(f"study {study.study_name!r} has no completed trial {trial_number}; "
                             f"completed: {', '.join(map(str, sorted(trials))) or 'none'}")
        trial = trials[trial_number]
    sections = {}
    for dotted, value in {**attrs["fixed"], **trial.params}.items():
        section, _, key = dotted.partition(".")
        sections.setdefault(section, {})[key] = value
    env_name = attrs["env_name"]
    out = Path(out or f"runs/sweep-{env_name}-trial{trial.number}.toml")
    lines = [f"# puffer sweep {env_name}: trial {trial.number} of study {study.study_name!r} in {url}.",
             f"# {attrs['metric']} {trial.values[0]:.4g} at its end; {attrs['target']:g} reached after "
             f"{format_seconds(trial.values[1])} s.",
             f"# Train with: puffer train {env_name} --config {out}"]
    for section, values in sections.items():
        lines += ["", f"[{section}]"] + [f"{key} = {toml_value(value)}" for key, value in values.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    load_config(env_name, config_file=out)  # what it wrote, train takes
    print_fn(f"wrote {out} (trial {trial.number}); train with: puffer train {env_name} --config {out}")
    return out


def toml_value(value):
    """A config value (bool, int, float, str or a list of them) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"

