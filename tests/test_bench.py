"""Smoke run of every bench with --quick: it runs and prints its table of ratios."""

import importlib
import re

import pytest

from bench.__main__ import bench_names
from bench.__main__ import main as bench_main


@pytest.mark.parametrize("name", bench_names())
def test_bench_runs_quick_and_prints_ratios(name, capsys):
    importlib.import_module(f"bench.{name}_bench").main(["--quick"])
    output = capsys.readouterr().out
    table_rows = [line for line in output.splitlines()
                  if len(re.findall(r"\d+\.\d+", line)) >= 2]
    assert len(table_rows) >= 2, output  # a table: at least two rows of measured figures


def test_bench_runner_rejects_unknown_names(capsys):
    assert bench_main(["no_such", "--quick"]) == 2
    assert "Unknown bench(es) ['no_such']; accepted:" in capsys.readouterr().err
