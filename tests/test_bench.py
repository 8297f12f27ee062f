"""Smoke run of every bench with --quick: it runs and prints its table of ratios (the serve
bench's run, with more checks, is in tests/serving/test_serve_bench.py)."""

import importlib
import re

import pytest

from bench.__main__ import bench_names
from bench.__main__ import main as bench_main

# Benches whose quick run has a test file of its own, with checks of their own table.
SMOKED_ELSEWHERE = {"serve": "tests/serving/test_serve_bench.py"}


@pytest.mark.parametrize("name", [name for name in bench_names() if name not in SMOKED_ELSEWHERE])
def test_bench_runs_quick_and_prints_ratios(name, capsys):
    importlib.import_module(f"bench.{name}_bench").main(["--quick"])
    output = capsys.readouterr().out
    table_rows = [line for line in output.splitlines()
                  if len(re.findall(r"\d+\.\d+", line)) >= 2]
    assert len(table_rows) >= 2, output  # a table: at least two rows of measured figures
    # Runs a bench trains keep their end-of-run summary out of its tables.
    assert "Run directory:" not in output and "Last checkpoint:" not in output, output


def test_bench_runner_rejects_unknown_names(capsys):
    assert bench_main(["no_such", "--quick"]) == 2
    assert "Unknown bench(es) ['no_such']; accepted:" in capsys.readouterr().err
