"""Smoke run of every bench with --quick: it runs and prints its table of ratios."""

import importlib
import re

import pytest

from bench.__main__ import bench_names
from bench.__main__ import main as bench_main
from training.tasks import get_task_class


@pytest.mark.parametrize("name", bench_names())
def test_bench_runs_quick_and_prints_ratios(name, capsys):
    module = importlib.import_module(f"bench.{name}_bench")
    for task in getattr(module, "TASKS", ()):
        try:
            get_task_class(task)
        except (ValueError, ImportError) as err:
            pytest.skip(f"bench {name} needs task {task!r}, not available yet: {err}")
    module.main(["--quick"])
    output = capsys.readouterr().out
    # Every bench's table has a baseline row whose ratio to itself is 1.00.
    assert re.search(r"\b1\.00", output), output


def test_bench_runner_rejects_unknown_names(capsys):
    assert bench_main(["no_such", "--quick"]) == 2
    assert "Unknown bench(es) ['no_such']; accepted:" in capsys.readouterr().err
