"""Smoke run of every bench with --quick: it runs and prints its table of ratios.

A bench is skipped only while a task it needs is not registered yet (named in its `TASKS`, or
reported as an unknown task when it runs).
"""

import importlib
import re

import pytest

from bench.__main__ import bench_names
from bench.__main__ import main as bench_main
from training.tasks import get_task_class


def _missing_task(err):
    return isinstance(err, ValueError) and str(err).startswith("Unknown task")


@pytest.mark.parametrize("name", bench_names())
def test_bench_runs_quick_and_prints_ratios(name, capsys):
    module = importlib.import_module(f"bench.{name}_bench")
    for task in getattr(module, "TASKS", ()):
        try:
            get_task_class(task)
        except (ValueError, ImportError) as err:
            pytest.skip(f"bench {name} needs task {task!r}, not available yet: {err}")
    try:
        module.main(["--quick"])
    except ValueError as err:
        if _missing_task(err):
            pytest.skip(f"bench {name}: {err}")
        raise
    output = capsys.readouterr().out
    table_rows = [line for line in output.splitlines()
                  if len(re.findall(r"\d+\.\d+", line)) >= 2]
    assert len(table_rows) >= 2, output  # a table: at least two rows of measured figures


def test_bench_runner_rejects_unknown_names(capsys):
    assert bench_main(["no_such", "--quick"]) == 2
    assert "Unknown bench(es) ['no_such']; accepted:" in capsys.readouterr().err
