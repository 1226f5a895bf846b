"""`puffer sweep`: Optuna over a config's [sweep.space] for score and time to
target, in parallel workers over one SQLite study that survives a kill; the
Pareto front shown and plotted; a trial applied as a config file that
`puffer train --config` takes; pruning on learning curves; clear errors."""
import math
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState

from puffer import sweep
from puffer.cli import main
from puffer.config import load_config

# light_button trials of 20k steps: about a second each.
QUICK = {"train.total_steps": 20_000, "sweep.trial_seconds": 10.0}


def states(db):
    study = sweep.load_study(f"sqlite:///{db}")
    return [t.state for t in study.get_trials()]


def test_a_parallel_sweep_then_its_front_and_a_trial_applied(tmp_path, capfd):
    db = tmp_path / "study.db"
    study = sweep.sweep("light_button", 6, f"sqlite:///{db}", jobs=2, overrides=QUICK)
    trials = study.get_trials()
    assert len(trials) == 6 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert {t.number for t in trials} == set(range(6))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for t in complete:
        score, seconds = t.values
        assert score == t.user_attrs["score"] and 0.0 <= score <= 16.0
        assert seconds == (t.user_attrs["seconds_to_target"] or math.inf)
        assert set(t.params) == set(load_config_space("light_button"))
        [curve] = t.user_attrs["curves"]  # one seed
        assert curve and all(earlier[0] < later[0] for earlier, later in zip(curve, curve[1:]))
    config = load_config("light_button", {"train.total_steps": 20_000})
    assert trials[0].params == {k: config[k.split(".")[0]][k.split(".")[1]]  # the baseline: the config as it is
                                for k in load_config_space("light_button")}
    out = capfd.readouterr().out
    assert "6 trials to go of 6, 2 at a time" in out and out.count("trial ") >= 6

    plot = sweep.show(str(db))
    out = capfd.readouterr().out
    assert f"{len(complete)} completed" in out and "Pareto front" in out
    assert plot == db.with_suffix(".png") and plot.stat().st_size > 1000
    front = sweep.front(study)
    assert front and all(t.state == TrialState.COMPLETE for t in front)
    for t in front:  # no completed trial beats a front trial on both objectives
        assert not any(o.values[0] > t.values[0] and o.values[1] < t.values[1] for o in complete)

    config_file = sweep.apply(str(db), out=tmp_path / "best.toml")
    chosen = front[0] if math.isfinite(front[0].values[1]) else max(front, key=lambda t: t.values[0])
    written = tomllib.loads(config_file.read_text())
    assert written["train"]["total_steps"] == 20_000  # the sweep's fixed keys come along
    config = load_config("light_button", config_file=config_file)
    for dotted, value in chosen.params.items():
        section, _, key = dotted.partition(".")
        assert config[section][key] == value
    run_dir = tmp_path / "run"
    main(["train", "light_button", "--config", str(config_file), "--run-dir", str(run_dir)])
    assert "trained light_button: 20,480 steps" in capfd.readouterr().out

    # Rerun with more trials: the study continues where it stopped.
    sweep.sweep("light_button", 7, f"sqlite:///{db}", jobs=1, overrides=QUICK)
    assert len(states(db)) == 7
    sweep.sweep("light_button", 7, f"sqlite:///{db}", jobs=1, overrides=QUICK)
    assert "already holds 7 trials" in capfd.readouterr().out


def load_config_space(env_name):
    return sweep.load_sweep(env_name)[1]


def test_a_killed_sweep_leaves_a_readable_study_that_the_same_command_continues(tmp_path):
    db = tmp_path / "study.db"
    command = [sys.executable, "-m", "puffer", "sweep", "light_button", "--trials", "50", "--jobs", "1",
               "--storage", f"sqlite:///{db}", "--train.total_steps", "100000", "--sweep.trial_seconds", "30"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # a trial done and the next under way
            if db.exists():
                try:
                    found = states(db)
                except ValueError:  # the tables are not there yet
                    found = []
                if TrialState.COMPLETE in found and found[-1] == TrialState.RUNNING:
                    break
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.2)
        else:
            pytest.fail("the sweep finished no trial in 120 s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed = states(db)
    assert killed[-1] == TrialState.RUNNING
    done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in killed)
    sweep.show(str(db), out=tmp_path / "front.png")  # readable as it was left
    lines = []
    study = sweep.sweep("light_button", done + 1, f"sqlite:///{db}", jobs=1,
                        overrides={"train.total_steps": 100_000, "sweep.trial_seconds": 30.0}, print_fn=lines.append)
    after = [t.state for t in study.get_trials()]
    assert after[:len(killed)] == killed[:-1] + [TrialState.FAIL]  # the killed trial, marked failed
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in after) == done + 1
    assert any("left running by a stopped sweep" in line for line in lines)


def test_opening_a_new_study_file_survives_another_process_stamping_it_at_once(tmp_path, monkeypatch):
    # A --show started while a sweep creates its file: both stamp the schema
    # version, and the one that loses the race gets an IntegrityError.
    import sqlalchemy.exc
    url = f"sqlite:///{tmp_path / 'study.db'}"
    real, calls = optuna.storages.RDBStorage, []

    def collides_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            real(*args, **kwargs)  # the other process's stamp
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", collides_once)
    assert isinstance(sweep.open_storage(url, create=True), real) and len(calls) == 2


def test_a_queued_trial_goes_to_one_of_two_workers_claiming_it_at_once(tmp_path):
    # Worker b claims the baseline between worker a's read of it as WAITING and
    # a's write of RUNNING: without the claim lock both run it, and the second
    # to tell it dies on "Cannot tell a COMPLETE trial".
    import threading

    import sqlalchemy
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=sweep.open_storage(url, create=True)).enqueue_trial({"x": 1.0})
    a, b = (sweep.load_study(url) for _ in range(2))
    claims = {}
    b_claims = threading.Thread(target=lambda: claims.update(b=b._pop_waiting_trial_id()))

    def b_claims_first(connection, cursor, statement, *args):
        if statement.startswith("UPDATE trials") and b_claims.ident is None:
            b_claims.start()
            b_claims.join(timeout=0.5)  # done at once unless it waits for a's claim

    sqlalchemy.event.listen(a._storage._backend.engine, "before_cursor_execute", b_claims_first)
    claims["a"] = a._pop_waiting_trial_id()
    b_claims.join()
    [trial] = a.get_trials()
    assert claims == {"a": trial._trial_id, "b": None} and trial.state == TrialState.RUNNING


def test_a_study_is_run_by_one_sweep_at_a_time(tmp_path):
    db = tmp_path / "study.db"
    lock = sweep.StudyLock(db)
    try:
        with pytest.raises(ValueError, match="another puffer sweep is running the study"):
            sweep.sweep("light_button", 1, f"sqlite:///{db}", jobs=1, overrides=QUICK)
    finally:
        lock.release()


def test_a_rerun_with_other_objectives_is_refused(tmp_path):
    db = tmp_path / "study.db"
    sweep.sweep("constant_reward", 1, f"sqlite:///{db}", jobs=1, overrides={"train.total_steps": 2000})
    with pytest.raises(ValueError, match=r"other target \(1.0, now 2.0\).*--study NAME"):
        sweep.sweep("constant_reward", 2, f"sqlite:///{db}", jobs=1,
                    overrides={"train.total_steps": 2000, "sweep.target": 2.0})
    with pytest.raises(ValueError, match=r"other fixed"):
        sweep.sweep("constant_reward", 2, f"sqlite:///{db}", jobs=1, overrides={"train.total_steps": 3000})


class FakeStudy:
    """Completed trials with the given learning curves."""

    def __init__(self, curves):
        self.trials = [SimpleNamespace(user_attrs={"curves": [curve]}) for curve in curves]

    def get_trials(self, deepcopy, states):
        return self.trials


ATTRS = {"metric": "mean_return_100", "target": 10.0, "trial_seconds": 10.0, "prune_after": 0.2,
         "startup_trials": 2}


def metrics(seconds, value, step=1000):
    return {"wall_time": seconds, "mean_return_100": value, "global_step": step}


def test_a_trial_below_the_median_curve_is_pruned_and_one_above_it_goes_on():
    study = FakeStudy([[(1.0, 2.0), (3.0, 6.0)], [(1.0, 1.0), (3.0, 4.0)], [(5.0, 9.0)]])
    above = sweep.TrialWatch(study, ATTRS)
    assert not above(metrics(1.0, 0.5))            # before prune_after x trial_seconds (2 s)
    assert not above(metrics(3.0, 5.5))            # above the median (5.0) of the curves at 3 s
    below = sweep.TrialWatch(study, ATTRS)
    assert not below(metrics(1.0, 3.0))
    assert below(metrics(3.5, 4.5))                # below 5.0; the third curve has not begun at 3.5 s
    assert below.pruned == (3.5, 4.5, 5.0, 2) and below.reached is None
    assert below.curve == [(1.0, 3.0), (3.5, 4.5)]


def test_a_trial_that_reached_the_target_is_never_pruned_and_stops_at_its_time_limit():
    watch = sweep.TrialWatch(FakeStudy([[(0.0, 100.0)], [(0.0, 100.0)]]), ATTRS)
    assert not watch(metrics(2.5, 10.0, step=5000))
    assert watch.reached == (2.5, 5000)
    assert not watch(metrics(5.0, 9.0))
    assert watch(metrics(10.0, 9.5))               # the time limit
    assert watch.pruned is None and watch.last == 9.5


def test_pruning_waits_for_its_startup_trials():
    watch = sweep.TrialWatch(FakeStudy([[(0.0, 100.0)]]), ATTRS)
    assert not watch(metrics(5.0, 0.0))


def cli_error(argv, capsys):
    """What the command says when it stops on an error (sys.exit's message or argparse's)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return f"{stopped.value.code} {capsys.readouterr().err}"


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("space, error", [
    ('"train.learning_rat" = {log = [1e-4, 1e-2]}', "unknown config key 'train.learning_rat'"),
    ('"train.learning_rate" = {logarithmic = [1e-4, 1e-2]}', "must be one of {log = \\[low, high\\]}"),
    ('"train.learning_rate" = {log = [1e-2, 1e-4]}', "low must be below high"),
    ('"train.learning_rate" = {log = [0.0, 1e-2]}', "a log range must be above 0"),
    ('"train.learning_rate" = {linear = [1e-4]}', "takes \\[low, high\\], two numbers"),
    ('"train.update_epochs" = {linear = [1, 4]}', "takes integers: use {int = \\[low, high\\]}"),
    ('"train.update_epochs" = {int = [1, 4.5]}', "two integers"),
    ('"train.gamma" = {choice = [0.9, 1.5]}', "'train.gamma' .* must be in \\[0.0, 1.0\\], got 1.5"),
    ('"train.norm_adv" = {choice = [1, 2]}', "must be of type bool"),
    ('"train.gamma" = {choice = []}', "takes a list of values"),
])
def test_a_bad_search_space_is_an_error_that_names_the_key_and_the_file(tmp_path, space, error):
    config_file = write(tmp_path / "bad.toml", f"[sweep.space]\n{space}\n")
    with pytest.raises((ValueError, KeyError, TypeError), match=error) as raised:
        sweep.sweep("light_button", 1, f"sqlite:///{tmp_path / 'study.db'}", jobs=1, config_file=config_file)
    assert str(config_file) in str(raised.value)
    assert not (tmp_path / "study.db").exists()  # checked before any study is made


def test_every_env_has_a_valid_default_search_space_and_target():
    import puffer
    for env_name in puffer.ENVS:
        settings, space, source = sweep.load_sweep(env_name)
        sweep.check_space(space, source, load_config(env_name))
        assert settings["target"] != 0.0, env_name


def test_bad_settings_and_studies_are_clear_errors(tmp_path, capsys):
    with pytest.raises(KeyError, match="unknown config key 'sweep.trial_secs'.*trial_seconds"):
        sweep.sweep("light_button", 1, f"sqlite:///{tmp_path}/s.db", overrides={"sweep.trial_secs": 3})
    with pytest.raises(ValueError, match="sweep.metric.*must be mean_return_100, episode_return"):
        sweep.sweep("light_button", 1, f"sqlite:///{tmp_path}/s.db", overrides={"sweep.metric": "loss"})
    with pytest.raises(ValueError, match="must be at least 1"):
        sweep.sweep("light_button", 0, f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(FileNotFoundError, match="no study database at"):
        sweep.show(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()
    write(tmp_path / "garbage.db", "not a database")
    with pytest.raises(ValueError, match="is not a readable Optuna study database"):
        sweep.show(str(tmp_path / "garbage.db"))
    sqlite3.connect(tmp_path / "other.db").execute("create table t (x)").connection.commit()
    with pytest.raises(ValueError, match="is not a readable Optuna study database"):
        sweep.show(str(tmp_path / "other.db"))
    optuna.create_study(study_name="a", storage=f"sqlite:///{tmp_path}/two.db")
    optuna.create_study(study_name="b", storage=f"sqlite:///{tmp_path}/two.db")
    with pytest.raises(ValueError, match=r"holds 2 studies \(a, b\): name one with --study"):
        sweep.apply(str(tmp_path / "two.db"))
    with pytest.raises(ValueError, match="was not written by puffer sweep"):
        sweep.show(str(tmp_path / "two.db"), "a")
    for argv, message in [(["sweep", "cartpole"], "name an ENV and --trials N"),
                          (["sweep", "--show", "x.db", "--trials", "3"], "take no ENV, --trials"),
                          (["sweep", "nope", "--trials", "3"], "unknown env 'nope'")]:
        assert message in cli_error(argv, capsys)


def test_a_trial_of_several_seeds_has_their_medians(tmp_path, capsys):
    db = tmp_path / "study.db"
    study = sweep.sweep("light_button", 1, f"sqlite:///{db}", jobs=1,
                        overrides={**QUICK, "sweep.seeds": 3, "train.seed": 7})
    [trial] = study.get_trials()
    assert len(trial.user_attrs["curves"]) == 3 and trial.values[0] == trial.user_attrs["score"]
    finals = [curve[-1][1] for curve in trial.user_attrs["curves"]]
    assert min(finals) <= trial.values[0] <= max(finals)
    assert "(median of 3 seeds)" in capsys.readouterr().out
    watch = sweep.TrialWatch(study, study.user_attrs, index=2)  # compared with the third seed's curves only
    assert sweep.values_at(study.get_trials(), 1e9, 2) == [trial.user_attrs["curves"][2][-1][1]]
    assert sweep.values_at(study.get_trials(), 1e9, 3) == [] and watch.index == 2


def test_a_trial_number_that_is_not_there(tmp_path):
    db = tmp_path / "study.db"
    sweep.sweep("constant_reward", 1, f"sqlite:///{db}", jobs=1, overrides={"train.total_steps": 2000})
    with pytest.raises(ValueError, match="has no completed trial 5; completed: 0"):
        sweep.apply(str(db), trial_number=5)


def test_a_trial_whose_values_make_no_config_fails_and_the_sweep_goes_on(tmp_path):
    config_file = write(tmp_path / "space.toml", '[sweep.space]\n"train.num_minibatches" = {choice = [3]}\n')
    db = tmp_path / "study.db"
    study = sweep.sweep("constant_reward", 2, f"sqlite:///{db}", jobs=1, config_file=config_file,
                        overrides={"train.total_steps": 2000})
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert "must divide vec.num_envs" in trials[0].user_attrs["error"]


@pytest.mark.parametrize("value", [True, 3, 2.5e-4, 1e-05, "a \"quoted\" name", [1, 2.0, "x"]])
def test_toml_values_read_back_as_written(value):
    assert tomllib.loads(f"v = {sweep.toml_value(value)}")["v"] == value


def test_train_takes_a_config_file_and_names_it_in_its_errors(tmp_path, capsys):
    config_file = write(tmp_path / "c.toml", "[train]\nlearning_rat = 1e-3\n")
    assert f"unknown config key 'train.learning_rat' in {config_file}" in cli_error(
        ["train", "light_button", "--config", str(config_file)], capsys)
    assert "cannot read config file" in cli_error(["train", "light_button", "--config", str(tmp_path / "no")], capsys)
    write(config_file, "[train\n")
    assert "is not valid TOML" in cli_error(["train", "light_button", "--config", str(config_file)], capsys)
    # The layers: env file, then the config file, then the command line.
    write(config_file, "[train]\nlearning_rate = 1e-3\ngamma = 0.9\n[sweep]\ntarget = 3.0\n")
    config = load_config("light_button", {"train.gamma": "0.8"}, config_file)
    assert config["train"]["learning_rate"] == 1e-3 and config["train"]["gamma"] == 0.8
    assert "sweep" not in config
    assert sweep.load_sweep("light_button", config_file=config_file)[0]["target"] == 3.0
