"""The throughput regression checker (benchmarks/check.py) on synthetic
pytest-benchmark reports: normalisation, the margin, the verdict and the
baseline update. Nothing here is timed."""
import importlib.util
import json
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("benchmark_check", ROOT / "benchmarks" / "check.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def bench(figure, seconds, calibration_speed, work=1000, speed=None, calibration="c"):
    """One pytest-benchmark JSON entry as the suite writes it: the fastest
    round took `seconds` for `work` units of work."""
    info = {"figure": figure, "unit": "env steps/s", "work": work, "calibration": calibration,
            "calibration_speed": calibration_speed}
    if speed is not None:
        info["speed"] = speed
    return {"name": f"test[{figure}]", "fullname": f"benchmarks/test_benchmarks.py::test[{figure}]",
            "stats": {"min": seconds, "median": 2 * seconds}, "extra_info": info}


def report(*benches):
    return {"benchmarks": list(benches)}


def baseline_of(rep, margin=0.3):
    return check.baseline_document(check.figures_from_report(rep), margin)


BASE = report(bench("step a", 0.001, 1e6), bench("step b", 0.002, 5e5),
              bench("train", 1.0, 100.0, speed=2e5, calibration="torch"))


def test_normalise_divides_speed_by_calibration():
    figure = check.normalise(bench("step a", 0.002, 1e6, work=4000))
    assert figure["speed"] == pytest.approx(2e6)           # work / fastest round
    assert figure["normalised"] == pytest.approx(2.0)      # / calibration speed
    figure = check.normalise(bench("train", 5.0, 100.0, speed=3e5))
    assert figure["speed"] == 3e5 and figure["normalised"] == pytest.approx(3e3)  # measured speed wins


def test_equal_figures_pass():
    rows = check.compare(baseline_of(BASE)["figures"], check.figures_from_report(BASE), 0.3)
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert all(r["ratio"] == pytest.approx(1.0) for r in rows)
    assert not check.failed(rows)


def test_a_figure_twice_as_slow_fails():
    slow = report(bench("step a", 0.002, 1e6), bench("step b", 0.002, 5e5),
                  bench("train", 1.0, 100.0, speed=2e5, calibration="torch"))
    rows = check.compare(baseline_of(BASE)["figures"], check.figures_from_report(slow), 0.3)
    by_name = {r["figure"]: r for r in rows}
    assert by_name["step a"]["status"] == "SLOW" and by_name["step a"]["ratio"] == pytest.approx(0.5)
    assert by_name["step b"]["status"] == "ok"
    assert [r["figure"] for r in check.failed(rows)] == ["step a"]


def test_a_slower_machine_cancels_out():
    # Everything, the calibration included, runs at half speed: no regression.
    slower = report(bench("step a", 0.002, 5e5), bench("step b", 0.004, 2.5e5),
                    bench("train", 2.0, 50.0, speed=1e5, calibration="torch"))
    rows = check.compare(baseline_of(BASE)["figures"], check.figures_from_report(slower), 0.3)
    assert not check.failed(rows) and all(r["ratio"] == pytest.approx(1.0) for r in rows)


def test_the_margin_is_the_boundary():
    baseline = baseline_of(BASE)["figures"]
    within = check.figures_from_report(report(bench("step a", 0.001 / 0.71, 1e6)))
    below = check.figures_from_report(report(bench("step a", 0.001 / 0.69, 1e6)))
    assert check.compare(baseline, within, 0.3, expect_all=False)[0]["status"] == "ok"
    assert check.compare(baseline, below, 0.3, expect_all=False)[0]["status"] == "SLOW"
    with pytest.raises(ValueError):
        check.compare(baseline, within, 1.5)


def test_missing_figures_fail_and_new_ones_do_not():
    rows = check.compare(baseline_of(BASE)["figures"],
                         check.figures_from_report(report(bench("step a", 0.001, 1e6),
                                                          bench("step c", 0.001, 1e6))), 0.3)
    status = {r["figure"]: r["status"] for r in rows}
    assert status == {"step a": "ok", "step b": "MISSING", "train": "MISSING", "step c": "new"}
    assert {r["figure"] for r in check.failed(rows)} == {"step b", "train"}


def test_best_of_and_median_of():
    runs = [check.figures_from_report(report(bench("step a", t, 1e6))) for t in (0.001, 0.004, 0.002)]
    assert check.best_of(*runs)["step a"]["normalised"] == pytest.approx(1.0)
    assert check.median_of(runs)["step a"]["normalised"] == pytest.approx(0.5)


def test_duplicate_figure_names_are_an_error():
    with pytest.raises(ValueError, match="two benchmarks"):
        check.figures_from_report(report(bench("step a", 0.001, 1e6), bench("step a", 0.002, 1e6)))


def test_table_lists_baseline_now_and_ratio():
    rows = check.compare(baseline_of(BASE)["figures"], check.figures_from_report(BASE), 0.3)
    table = check.format_table(rows, 0.3)
    assert "baseline" in table and "ratio" in table and "step b" in table
    assert "min 1.000, max 1.000" in table


def write(path, data):
    path.write_text(json.dumps(data))
    return str(path)


def test_main_on_reports(tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    same = write(tmp_path / "same.json", BASE)
    # --update stores the figures; an unchanged report then passes...
    assert check.main(["--update", "--baseline", str(baseline), "--report", same]) == 0
    assert set(json.loads(baseline.read_text())["figures"]) == {"step a", "step b", "train"}
    assert check.main(["--baseline", str(baseline), "--report", same]) == 0
    assert "PASS" in capsys.readouterr().out
    # ...and one with a figure twice as slow fails, naming it.
    slow = write(tmp_path / "slow.json", report(bench("step a", 0.001, 1e6), bench("step b", 0.004, 5e5),
                                                bench("train", 1.0, 100.0, speed=2e5, calibration="torch")))
    assert check.main(["--baseline", str(baseline), "--report", slow]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "step b (0.50x)" in out
    # Of several attempts the best counts: a figure slow once but not again passes.
    assert check.main(["--baseline", str(baseline), "--report", slow, same]) == 0
    # No baseline: an error, not a pass.
    assert check.main(["--baseline", str(tmp_path / "none.json"), "--report", same]) == 2


def test_benchmarks_stay_out_of_the_plain_test_run():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["testpaths"] == ["tests"]
    assert (ROOT / "benchmarks" / "baseline.json").is_file()
