"""The preference file, the scripted judges, puffer prefs and puffer label."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from puffer.cli import main
from puffer.judges import JUDGES, choose, fluency, get_judge, verse
from puffer.preferences import append_preference, comparisons, read_preferences, sample_pair
from puffer.tokenizer import load_corpus_tokens
from puffer.trainer.pretrain import load_language_model


def record(pair=0, choice="first", **changes):
    return {"pair": pair, "seed": 0, "prompt": "ROMEO:\n", "first": "O, she doth", "second": "zzq xj",
            "model": "runs/x", "choice": choice, "labeller": "human", **changes}


@pytest.fixture(scope="module")
def checkpoint(tiny_gpt):
    return tiny_gpt


def test_records_round_trip(tmp_path):
    path = tmp_path / "prefs.jsonl"
    records = [record(0, "first"), record(1, "second", prompt="Ünïcode\n\"quoted\""), record(2, "tie"),
               record(3, "skip", labeller="judge:fluency")]
    for r in records:
        append_preference(path, r)
    assert read_preferences(path) == records
    assert comparisons(records) == records[:3]


def test_a_torn_last_line_is_ignored_then_cut_off(tmp_path):
    path = tmp_path / "prefs.jsonl"
    append_preference(path, record(0))
    line = json.dumps(record(1, prompt="Ünïcode"), ensure_ascii=False).encode()
    with open(path, "ab") as f:
        f.write(line[:line.index("Ü".encode()) + 1])  # a writer killed mid-line, inside a character
    assert read_preferences(path) == [record(0)]
    append_preference(path, record(1, "second"))
    assert path.read_text().count("\n") == 2
    assert read_preferences(path) == [record(0), record(1, "second")]


def test_a_killed_appender_leaves_only_complete_records(tmp_path):
    path = tmp_path / "prefs.jsonl"
    # Long records, so that a kill can land inside a write as well as between writes.
    script = (f"from puffer.preferences import append_preference\n"
              f"r = {{**{record()!r}, 'first': 'x' * 200_000}}\n"
              f"for i in range(10 ** 6):\n"
              f"    append_preference({str(path)!r}, {{**r, 'pair': i}})\n")
    writer = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while (not path.exists() or path.stat().st_size < 2_000_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    records = read_preferences(path)
    assert len(records) >= 5 and [r["pair"] for r in records] == list(range(len(records)))
    append_preference(path, record(len(records)))
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == len(records) + 1
    assert all(json.loads(line)["pair"] == i for i, line in enumerate(lines[:-1]))


@pytest.mark.parametrize("change, message", [
    ({"choice": "both"}, "choice must be one of first, second, tie, skip, got 'both'"),
    ({"choice": None}, "'choice' must be str"),
    ({"pair": "3"}, "'pair' must be int"),
    ({"seed": -1}, "'seed' must be >= 0"),
    ({"labeller": "judge:"}, "labeller must be 'human' or 'judge:NAME'"),
    ({"chioce": "first"}, "unknown keys chioce"),
])
def test_bad_records_are_refused(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        append_preference(tmp_path / "prefs.jsonl", {**record(), **change})
    assert not (tmp_path / "prefs.jsonl").exists()


def test_missing_key_and_corrupt_middle_line(tmp_path):
    bad = record()
    del bad["model"]
    with pytest.raises(ValueError, match="lacks model"):
        append_preference(tmp_path / "prefs.jsonl", bad)
    path = tmp_path / "corrupt.jsonl"
    path.write_text(json.dumps(record(0)) + "\n{not json\n" + json.dumps(record(2)) + "\n")
    with pytest.raises(ValueError, match="corrupt.jsonl line 2: not a preference record"):
        read_preferences(path)
    path.write_text(json.dumps(record(0)) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="line 2: .*lacks model"):
        read_preferences(path)


def corpus_passage(start, length=64):
    tokenizer, train, _ = load_corpus_tokens()  # training text: not what the fluency model counted
    return tokenizer.decode(train[start - length:start]), tokenizer.decode(train[start:start + length])


def test_fluency_prefers_corpus_text_to_noise_and_loops():
    rng = np.random.default_rng(0)
    for start in (10_000, 200_000, 600_000):
        prompt, text = corpus_passage(start)
        shuffled = "".join(rng.permutation(list(text)))
        loop = ("and I will not, " * 4)[:len(text)]
        assert fluency(prompt, text) > fluency(prompt, shuffled) + 2
        assert fluency(prompt, text) > fluency(prompt, loop) + 0.5


def test_verse_prefers_lines_of_verse():
    lines = "Upon the gentle shore of Tiber there,\nWe sat and told the stories of the dead;\n"
    prose = "we sat upon the shore and told the stories of the dead, then we went home again and slept\n"
    assert verse("", lines) == 1 and verse("", prose) == 0
    # The line the prompt began counts whole; a speaker's line and the unfinished last one do not count.
    assert verse("ROMEO:\nUpon the gentle ", "shore of Tiber there,\nJULIET:\nAnd so") == 1
    assert verse("", "short\n" + lines) == pytest.approx(2 / 3)
    assert verse("", "an unfinished line") == 0  # nothing to judge yet


def test_choose_follows_the_scores_with_noise():
    prompt, good = corpus_passage(300_000)
    bad = "".join(np.random.default_rng(1).permutation(list(good)))
    rng = np.random.default_rng(0)
    sharp = [choose(fluency, prompt, good, bad, rng, noise=0.05) for _ in range(200)]
    assert sharp.count("first") >= 199
    flipped = [choose(fluency, prompt, bad, good, rng, noise=0.05) for _ in range(200)]
    assert flipped.count("second") >= 199
    blunt = [choose(fluency, prompt, good, bad, rng, noise=1000.0) for _ in range(400)]
    assert 160 <= blunt.count("first") <= 240
    assert choose(fluency, prompt, good, good, rng, noise=0.05) == "tie"
    with pytest.raises(ValueError, match="noise must be positive"):
        choose(fluency, prompt, good, bad, rng, noise=0)


def test_unknown_judge_lists_the_judges():
    assert get_judge("verse") is verse
    with pytest.raises(ValueError, match=f"unknown judge 'taste': the judges are {', '.join(JUDGES)}"):
        get_judge("taste")


def test_pairs_are_the_same_for_a_seed_and_index(checkpoint):
    model, tokenizer = load_language_model(checkpoint)
    _, _, held_out = load_corpus_tokens()
    pair = sample_pair(model, tokenizer, held_out, 5, prompt_len=16, gen_len=12, seed=3)
    assert pair == sample_pair(model, tokenizer, held_out, 5, prompt_len=16, gen_len=12, seed=3)
    assert len(pair["prompt"]) == 16 and len(pair["first"]) == len(pair["second"]) == 12
    assert pair["prompt"] in tokenizer.decode(held_out)
    assert pair["prompt"] != sample_pair(model, tokenizer, held_out, 6, 16, 12, seed=3)["prompt"]


def test_prefs_writes_and_resumes(checkpoint, tmp_path, capsys):
    out = tmp_path / "prefs.jsonl"
    args = ["prefs", "--checkpoint", str(checkpoint), "--judge", "fluency", "--gen-len", "12", "--out", str(out)]
    main(args + ["--pairs", "3"])
    first_run = read_preferences(out)
    assert [r["pair"] for r in first_run] == [0, 1, 2]
    assert all(r["labeller"] == "judge:fluency" and r["model"] == str(checkpoint) and r["seed"] == 0
               for r in first_run)
    assert all(r["choice"] in ("first", "second", "tie") and len(r["first"]) == 12 for r in first_run)
    main(args + ["--pairs", "5"])
    records = read_preferences(out)
    assert records[:3] == first_run and [r["pair"] for r in records] == [0, 1, 2, 3, 4]
    assert f"judge:fluency: 5 pairs (first {sum(r['choice'] == 'first' for r in records)}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown judge 'taste'"):
        main(args[:4] + ["taste", "--pairs", "1"])


def label(checkpoint, out, keys):
    return subprocess.run([sys.executable, "-m", "puffer", "label", "--checkpoint", str(checkpoint),
                           "--gen-len", "12", "--out", str(out)],
                          input=keys, capture_output=True, text=True, timeout=120, check=True).stdout


def test_label_records_piped_choices_and_resumes(checkpoint, tmp_path):
    out = tmp_path / "prefs.jsonl"
    shown = label(checkpoint, out, "1\n2\nx\nt\ns\nq\n1\n")
    records = read_preferences(out)
    assert [(r["pair"], r["choice"], r["labeller"]) for r in records] == [
        (0, "first", "human"), (1, "second", "human"), (2, "tie", "human"), (3, "skip", "human")]
    assert "--- 1 ---\n    " + records[0]["first"].replace("\n", "\n    ") in shown
    assert "'x' is not a choice" in shown and "human: 4 pairs" in shown
    shown = label(checkpoint, out, "2\n")  # the end of input ends it too
    assert [r["pair"] for r in read_preferences(out)] == [0, 1, 2, 3, 4]
    assert "=== pair 4 (4 labelled) ===" in shown and "human: 5 pairs" in shown
