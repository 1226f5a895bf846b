"""With PUFFER_NO_SKIPS=1 (set by .ci/run) a skipped test fails the run, so
that a missing dependency cannot hide behind a skip. Only tests marked
`gpu` may skip, and only where no CUDA device is present."""
import os

import pytest


@pytest.fixture(scope="session")
def tiny_gpt(tmp_path_factory):
    """The run directory of a tiny GPT's pretraining (tests/tiny_gpt.py)."""
    from puffer.config import load_config
    from puffer.trainer.pretrain import pretrain
    from tiny_gpt import TINY_PRETRAIN
    run_dir = tmp_path_factory.mktemp("tiny-gpt")
    pretrain(load_config("text", TINY_PRETRAIN), run_dir, print_fn=lambda line: None)
    return run_dir


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped where there is none")


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device (gpu marker)"))


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("PUFFER_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = [report for report in reporter.stats.get("skipped", []) if "gpu" not in getattr(report, "keywords", {})]
    if skipped:
        reporter.write_line(f"PUFFER_NO_SKIPS: {len(skipped)} test(s) skipped that must run:", red=True)
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            reporter.write_line(f"  {report.nodeid}: {reason}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
