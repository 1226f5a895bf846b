"""Preferences between two continuations of one prompt, for a reward model.

The file is JSON lines, one record a line:
    {"pair": 0, "seed": 0, "prompt": "...", "first": "...", "second": "...",
     "model": "runs/pretrain-text", "choice": "first", "labeller": "human"}
`choice` is one of CHOICES ("skip": shown, not judged); `labeller` is
"human" or "judge:NAME" (puffer.judges). Each record goes to the file in one
O_APPEND write, so a kill leaves at most a torn last line: the reader ignores
it and the next append cuts it off. Pair i of a seed is the same prompt and
continuations of a model every time (`sample_pair`), so labelling resumes at
`next_pair`, and a record names its seed and model to be drawn again.
"""
import json
import os

import numpy as np

from puffer.trainer.checkpoint import fsync_folder

CHOICES = ("first", "second", "tie", "skip")
COMPARED = ("first", "second", "tie")  # the choices a reward model learns from
FIELDS = {"pair": int, "seed": int, "prompt": str, "first": str, "second": str, "model": str, "choice": str,
          "labeller": str}


def check_record(record):
    """ValueError unless `record` is a complete preference record."""
    if not isinstance(record, dict):
        raise ValueError(f"a preference record is a JSON object, got {type(record).__name__}")
    missing = [key for key in FIELDS if key not in record]
    if missing:
        raise ValueError(f"preference record lacks {', '.join(missing)} (a record has {', '.join(FIELDS)})")
    unknown = [key for key in record if key not in FIELDS]
    if unknown:
        raise ValueError(f"preference record has unknown keys {', '.join(unknown)} "
                         f"(a record has {', '.join(FIELDS)})")
    for key, kind in FIELDS.items():
        value = record[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"preference record's {key!r} must be {kind.__name__}, got {value!r}")
    for key in ("pair", "seed"):
        if record[key] < 0:
            raise ValueError(f"preference record's {key!r} must be >= 0, got {record[key]}")
    if record["choice"] not in CHOICES:
        raise ValueError(f"preference record's choice must be one of {', '.join(CHOICES)}, "
                         f"got {record['choice']!r}")
    labeller = record["labeller"]
    if labeller != "human" and not (labeller.startswith("judge:") and len(labeller) > len("judge:")):
        raise ValueError(f"preference record's labeller must be 'human' or 'judge:NAME', got {labeller!r}")


def _cut_torn_line(fd):
    """Truncates the file after its last newline, dropping the partial line a
    killed writer left, so that the next record starts a line of its own."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - 65536)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        end = start
    os.ftruncate(fd, 0)  # not one complete line


def append_preference(path, record):
    """Checks `record`, then adds it as one line: one os.write on an O_APPEND
    file descriptor (other appenders' lines never interleave with it), then
    fsync."""
    check_record(record)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # read: the last line
    try:
        _cut_torn_line(fd)
        written = os.write(fd, line)
        if written != len(line):  # disk full or a signal: a torn line, cut off by the next append
            raise OSError(f"wrote {written} of {len(line)} bytes of a preference record to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_folder(path)


def read_preferences(path):
    """The complete records of a preference file, in order. A torn last line
    (no newline: a writer was killed) is ignored; a bad line before it is a
    ValueError naming the line."""
    with open(path, "rb") as f:  # bytes: a torn line may end inside a character
        lines = f.read().split(b"\n")
    records = []
    for number, line in enumerate(lines[:-1], 1):  # lines[-1]: b"" or the torn line
        try:
            record = json.loads(line.decode("utf-8"))
            check_record(record)
        except ValueError as error:
            raise ValueError(f"{path} line {number}: not a preference record: {error}") from None
        records.append(record)
    return records


def comparisons(records):
    """The records a reward model learns from: choice first, second or tie."""
    return [r for r in records if r["choice"] in COMPARED]


def next_pair(records, labeller):
    """The pair index where `labeller` goes on: one past its last pair."""
    return max((r["pair"] + 1 for r in records if r["labeller"] == labeller), default=0)


def sample_pair(model, tokenizer, prompt_tokens, index, prompt_len, gen_len, seed):
    """Pair `index` of `seed`: a prompt of `prompt_len` characters at a
    position of `prompt_tokens` (the corpus's held-out tail) drawn from
    (seed, index), and two continuations of `gen_len` characters sampled from
    `model` at temperature 1. The same every time, whatever came before."""
    import torch
    if not 1 <= prompt_len < len(prompt_tokens):
        raise ValueError(f"prompt_len must be in [1, {len(prompt_tokens) - 1}], got {prompt_len}")
    if gen_len < 1:
        raise ValueError(f"gen_len must be at least 1, got {gen_len}")
    rng = np.random.default_rng([seed, index])
    position = int(rng.integers(0, len(prompt_tokens) - prompt_len + 1))
    prompt = np.asarray(prompt_tokens[position:position + prompt_len], np.int64)
    with torch.random.fork_rng(devices=[]):  # the caller's torch stream is left as it was
        torch.manual_seed(int(rng.integers(2 ** 63)))
        was_training = model.training
        model.eval()
        out = model.generate(torch.from_numpy(prompt).repeat(2, 1), gen_len)
        model.train(was_training)
    first, second = (tokenizer.decode(row[prompt_len:].numpy()) for row in out)
    return {"pair": index, "seed": seed, "prompt": tokenizer.decode(prompt), "first": first, "second": second}


def sample_pairs(model, tokenizer, prompt_tokens, prompt_len, gen_len, seed, start=0, stop=None):
    """sample_pair for the pair indices start, start + 1, ... up to `stop`
    (without one, for ever)."""
    index = start
    while stop is None or index < stop:
        yield sample_pair(model, tokenizer, prompt_tokens, index, prompt_len, gen_len, seed)
        index += 1
