"""The throughput regression check: runs the benchmark suite (benchmarks/),
normalises every figure by the calibration measured with it in the same run,
compares each with benchmarks/baseline.json and exits 1 when any falls more
than the margin below its baseline (or a baseline figure was not measured).

    python benchmarks/check.py               # run the suite and check it
    python benchmarks/check.py --update      # rerun and rewrite the baseline
    python -m benchmarks.check ...           # the same, from the repository root

A figure is a speed (env steps/s, GAE elements/s, training SPS): work over the
fastest timed round. Its calibration is the speed of a fixed reference loop
timed right before each of its rounds (see benchmarks/conftest.py); figure /
calibration is the normalised figure, in which the speed of the machine and
the load on it cancel to first order. A figure below the margin is measured
once more (`--retries`) and fails only if every attempt falls below: a real
regression is slow every time, noise seldom twice in a row.

Exit status: 0 all figures within the margin, 1 a regression (or a missing
figure), 2 the suite itself failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "benchmarks" / "baseline.json"
# A figure fails when it is more than MARGIN below its baseline: now /
# baseline < 1 - MARGIN. Chosen from the measured run-to-run spread of the
# normalised figures on a shared 2-core machine (see baseline.json "about").
MARGIN = 0.30
RETRIES = 1
UPDATE_RUNS = 3

OK, SLOW, NEW, MISSING = "ok", "SLOW", "new", "MISSING"


class SuiteError(RuntimeError):
    """The benchmark suite did not run through (a test failed or errored)."""


# -- pure logic (tested in tests/test_benchmark_check.py) ------------------------

def normalise(bench):
    """One pytest-benchmark JSON entry -> its figure: a dict with the name,
    unit, calibration kind, speed (extra_info "speed", or work / fastest round),
    calibration speed, normalised speed and pytest node id."""
    info = bench["extra_info"]
    speed = info.get("speed")
    if speed is None:
        speed = info["work"] / bench["stats"]["min"]
    return {"figure": info["figure"], "unit": info["unit"], "calibration": info["calibration"],
            "speed": speed, "calibration_speed": info["calibration_speed"],
            "normalised": speed / info["calibration_speed"], "nodeid": bench["fullname"]}


def figures_from_report(report):
    """Figure name -> figure (see `normalise`) for every benchmark of a
    pytest-benchmark JSON report."""
    figures = {}
    for bench in report["benchmarks"]:
        figure = normalise(bench)
        if figure["figure"] in figures:
            raise ValueError(f"two benchmarks report figure {figure['figure']!r}")
        figures[figure["figure"]] = figure
    return figures


def best_of(*runs):
    """Per figure, the attempt with the highest normalised speed among `runs`
    (dicts figure name -> figure): noise only ever slows a figure down."""
    best = {}
    for figures in runs:
        for name, figure in figures.items():
            if name not in best or figure["normalised"] > best[name]["normalised"]:
                best[name] = figure
    return best


def median_of(runs):
    """Per figure, the attempt with the median normalised speed (the lower
    middle one for an even count): what --update stores."""
    names = dict.fromkeys(name for figures in runs for name in figures)
    chosen = {}
    for name in names:
        attempts = sorted((figures[name] for figures in runs if name in figures),
                          key=lambda figure: figure["normalised"])
        chosen[name] = attempts[(len(attempts) - 1) // 2]
    return chosen


def compare(baseline, figures, margin, expect_all=True):
    """Rows, one per figure in `baseline` (name -> {"normalised": ...}) or
    `figures` (name -> figure): figure, unit, calibration, baseline, now,
    ratio (now / baseline) and status: "ok"; "SLOW" when ratio < 1 - margin;
    "new" for a figure without a baseline; "MISSING" for a baseline figure
    not measured (only when `expect_all`, else the row is left out)."""
    if not 0 < margin < 1:
        raise ValueError(f"margin must be in (0, 1), got {margin!r}")
    rows = []
    for name in dict.fromkeys([*baseline, *figures]):
        base = baseline.get(name, {}).get("normalised")
        figure = figures.get(name)
        if figure is None:
            if expect_all:
                rows.append({"figure": name, "unit": baseline[name].get("unit", ""),
                             "calibration": baseline[name].get("calibration", ""), "baseline": base,
                             "now": None, "ratio": None, "speed": None, "status": MISSING})
            continue
        now = figure["normalised"]
        ratio = now / base if base else None
        if ratio is None:
            status = NEW
        elif ratio < 1 - margin:
            status = SLOW
        else:
            status = OK
        rows.append({"figure": name, "unit": figure["unit"], "calibration": figure["calibration"],
                     "baseline": base, "now": now, "ratio": ratio, "speed": figure["speed"],
                     "status": status})
    return rows


def failed(rows):
    """The rows that fail the check: SLOW or MISSING."""
    return [row for row in rows if row["status"] in (SLOW, MISSING)]


def baseline_document(figures, margin, about=None):
    """The contents of baseline.json for `figures` (name -> figure)."""
    return {
        "about": about or ("Normalised throughput figures (figure speed / calibration speed, see "
                           "benchmarks/conftest.py); rewritten by `python benchmarks/check.py --update`."),
        "margin": margin,
        "figures": {name: {key: figure[key] for key in
                           ("normalised", "unit", "calibration", "speed", "calibration_speed")}
                    for name, figure in sorted(figures.items())},
    }


def human(value):
    """1234567 -> '1.23M'."""
    if value is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_table(rows, margin):
    """The comparison as an aligned text table."""
    header = ("figure", "cal", "baseline", "now", "ratio", "status", "speed now")
    lines = []
    for row in rows:
        lines.append((row["figure"], row["calibration"],
                      "-" if row["baseline"] is None else f"{row['baseline']:.4g}",
                      "-" if row["now"] is None else f"{row['now']:.4g}",
                      "-" if row["ratio"] is None else f"{row['ratio']:.3f}",
                      row["status"], f"{human(row['speed'])} {row['unit']}" if row["speed"] else "-"))
    widths = [max(len(str(line[i])) for line in (header, *lines)) for i in range(len(header))]
    right = {2, 3, 4}

    def fmt(line):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(line, widths))).rstrip()
    ratios = [row["ratio"] for row in rows if row["ratio"] is not None]
    summary = (f"{len(rows)} figures; ratio now/baseline min {min(ratios):.3f}, max {max(ratios):.3f}; "
               f"a figure fails below {1 - margin:.2f}") if ratios else f"{len(rows)} figures"
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines), summary])


# -- running the suite -----------------------------------------------------------

def run_suite(json_path, select=None, keyword=None):
    """Runs the benchmarks (all, or the pytest node ids in `select`, or those
    matching `keyword`) with their report in `json_path`; returns the report."""
    command = [sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
               "--benchmark-disable-gc", "--benchmark-json", str(json_path)]
    if select:
        command = command[:3] + list(select) + command[4:]
    if keyword:
        command += ["-k", keyword]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if result.returncode != 0 or not Path(json_path).exists():
        raise SuiteError(f"the benchmark suite failed (exit status {result.returncode}):\n"
                         f"{' '.join(command)}\n{result.stdout[-6000:]}")
    report = json.loads(Path(json_path).read_text())
    print(f"  ran {len(report['benchmarks'])} benchmarks in {time.perf_counter() - start:.1f} s", flush=True)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true",
                        help=f"rewrite the baseline: the median of --runs runs (default {UPDATE_RUNS})")
    parser.add_argument("--runs", type=int, default=UPDATE_RUNS, help="suite runs for --update")
    parser.add_argument("--margin", type=float, default=None,
                        help=f"fail a figure below (1 - margin) x baseline (default: the baseline's, else {MARGIN})")
    parser.add_argument("--retries", type=int, default=RETRIES,
                        help=f"re-measure failing figures this many times before failing (default {RETRIES})")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="the baseline file")
    parser.add_argument("-k", dest="keyword", help="run only the benchmarks matching this pytest -k expression")
    parser.add_argument("--report", type=Path, nargs="+",
                        help="check these pytest-benchmark JSON reports instead of running the suite")
    parser.add_argument("--keep", type=Path, help="a folder to keep the JSON reports of this run in")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    stored = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
    baseline = stored.get("figures", {})
    margin = args.margin or stored.get("margin") or MARGIN
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="puffer-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))

    def measure(select=None):
        path = workdir / f"report-{next(counter)}.json"
        return figures_from_report(run_suite(path, select, args.keyword))

    try:
        if args.update:
            if args.report:
                runs = [figures_from_report(json.loads(p.read_text())) for p in args.report]
            else:
                runs = []
                for i in range(args.runs):
                    print(f"run {i + 1} of {args.runs}", flush=True)
                    runs.append(measure())
            figures = median_of(runs)
            if args.keyword:  # a partial run updates only what it measured
                figures = {**baseline, **figures}
            rows = compare(baseline, figures, margin, expect_all=False)
            print(format_table(rows, margin))
            args.baseline.write_text(json.dumps(baseline_document(figures, margin, stored.get("about")),
                                                indent=2) + "\n")
            print(f"wrote {len(figures)} figures to {args.baseline} "
                  f"(median of {len(runs)} runs) in {time.perf_counter() - started:.0f} s")
            return 0

        if not baseline:
            print(f"no baseline at {args.baseline}: run with --update first", file=sys.stderr)
            return 2
        if args.report:
            figures = best_of(*(figures_from_report(json.loads(p.read_text())) for p in args.report))
        else:
            figures = measure()
        rows = compare(baseline, figures, margin, expect_all=not args.keyword)
        print(format_table(rows, margin))
        attempt = 0
        while not args.report and attempt < args.retries and any(r["status"] == SLOW for r in rows):
            attempt += 1
            slow = [r["figure"] for r in rows if r["status"] == SLOW]
            print(f"\n{len(slow)} figure(s) below the margin: {', '.join(slow)}; "
                  f"measuring them again (retry {attempt} of {args.retries})", flush=True)
            again = measure(select=sorted({figures[name]["nodeid"] for name in slow}))
            figures = best_of(figures, again)
            rows = compare(baseline, figures, margin, expect_all=not args.keyword)
            print(format_table([r for r in rows if r["figure"] in slow], margin))
    except SuiteError as e:
        print(e, file=sys.stderr)
        return 2

    bad = failed(rows)
    faster = [r["figure"] for r in rows if r["ratio"] is not None and r["ratio"] > 1 + margin]
    new = [r["figure"] for r in rows if r["status"] == NEW]
    if new:
        print(f"note: {len(new)} figure(s) without a baseline ({', '.join(new)}): "
              f"run `python benchmarks/check.py --update` to record them")
    if faster:
        print(f"note: {len(faster)} figure(s) more than {margin:.0%} above the baseline "
              f"({', '.join(faster)}): consider `python benchmarks/check.py --update`")
    elapsed = time.perf_counter() - started
    if bad:
        listed = ", ".join(r["figure"] + (" (missing)" if r["ratio"] is None else f" ({r['ratio']:.2f}x)")
                           for r in bad)
        print(f"FAIL: {len(bad)} figure(s) below {1 - margin:.2f} x baseline or missing: {listed}"
              f"  [{elapsed:.0f} s]")
        return 1
    print(f"PASS: {len(rows)} figures within {margin:.0%} of the baseline  [{elapsed:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
