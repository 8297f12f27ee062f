"""The serving bench runs (quick mode, on a short sentiment run) and prints its table, with the
protocol floor (canned answers on the same libraries) beside the server."""

from bench import serve_bench


def test_serve_bench_quick_prints_its_table(capsys):
    assert serve_bench.main(["--quick"]) == 0
    out, timeline = capsys.readouterr().out.split("Where a sequential batch-1 request's time")
    assert "Serving sentiment version 1" in out
    header = next(line for line in out.splitlines() if line.startswith("mode"))
    assert "req/s 8" in header and header.endswith("CPU ms/req 8")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split()[:1] in (["in-process"], ["gRPC"], ["REST"], ["gRPC-floor"],
                                    ["REST-floor"])}
    assert sorted(rows) == ["REST", "REST-floor", "gRPC", "gRPC-floor", "in-process"]
    # p50, p99, p50 ratio, req/s with 1 and 8 clients (quick), their ratios, and CPU ms per
    # request of the server / the clients with 8 clients (the server has none in process).
    assert all(len(values) == 8 for values in rows.values())
    assert rows["in-process"][2] == "1.00" and rows["in-process"][5:7] == ["1.00"] * 2
    assert all(float(value) > 0 for values in rows.values() for value in values[:7])
    cpu = {mode: values[7].split("/") for mode, values in rows.items()}
    assert cpu["in-process"][0] == "-" and float(cpu["in-process"][1]) > 0
    assert all(float(server) > 0 and float(client) > 0 for mode, (server, client) in cpu.items()
               if mode != "in-process")
    # The protocol floor answers canned bytes: its server spends less per request than the
    # real one, which parses, checks and runs the model.
    for mode in ("gRPC", "REST"):
        assert float(cpu[mode + "-floor"][0]) < float(cpu[mode][0])
        assert f"{mode}: the protocol alone (floor) takes" in out
    assert "Clients: threads of this one process" in out
    # Each sequential request is split by the servers' own stamps: every one is matched with its
    # handler, the floor runs no session, and the parts lie inside the round trip.
    parts = {line.split()[0]: [float(value) for value in line.split()[1:]]
             for line in timeline.splitlines()
             if line.split()[:1] in (["gRPC"], ["REST"], ["gRPC-floor"])}
    assert sorted(parts) == ["REST", "gRPC", "gRPC-floor"]
    for mode, (requests, total, to_handler, handler, run, rest, to_client) in parts.items():
        assert requests == 20
        assert min(to_handler, handler, rest, to_client) > 0
        assert max(to_handler, handler, to_client) < total
        assert (run == 0) == (mode == "gRPC-floor") and run < handler
    assert "Run directory:" not in out  # the training run's summary stays out of the table


def test_grpc_threading_experiment_quick_runs_its_four_servers(capsys):
    # Four Predict servers in their own processes answer the same request alike (checked by the
    # experiment itself) and each gets a rate, a CPU figure and a p50.
    from bench import grpc_threading

    assert grpc_threading.main(["--quick", "--seconds", "0.5", "--turns", "1"]) == 0
    rows = {line.split()[0]: [float(value) for value in line.split()[1:]]
            for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] and line.split()[0] in grpc_threading.MODES}
    assert sorted(rows) == sorted(grpc_threading.MODES)
    assert rows["threads"][1] == 1.0 and rows["threads+batch"][2] == 1.0
    assert all(len(values) == 5 and min(values) > 0 for values in rows.values())
