"""The serving bench runs (quick mode, on a short sentiment run) and prints its table."""

from bench import serve_bench


def test_serve_bench_quick_prints_its_table(capsys):
    assert serve_bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "p50 / in-process" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split()[:1] in (["in-process"], ["gRPC"], ["REST"])}
    assert sorted(rows) == ["REST", "gRPC", "in-process"]
    assert rows["in-process"][3:] == ["1.00", "1.00"]
    assert all(float(value) > 0 for values in rows.values() for value in values)
