"""Benchmarks: each `*_bench.py` module prints a table of ratios measured side by side in one run.

Run them all with `python -m bench` (or `make bench`), one with `python -m bench train`, and a tiny
smoke run with `python -m bench --quick`.
"""
