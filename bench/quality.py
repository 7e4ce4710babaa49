"""Benchmark the quality stage on a large clean.events partition (default 10M rows).

    .venv/bin/python bench/quality.py [--rows 10000000] [--repeat 2] [--skip-plain]

Times, side by side in one process (the machine is shared, so compare within a run):

- ``gx plain``     GX's own validate of the whole suite on the full, already converted pandas frame
                   (one ``Batch.validate`` call: what a straightforward adapter would do);
- ``adapter``      our path end to end: Polars → pandas conversion (included), GX validate per column
                   group, results converted to ours and to Dagster ``AssetCheckResult``s;
- ``  of which gx``  the GX ``validate`` calls inside the adapter (the part GX itself computes);
- ``  of which conversion + preparation``  Polars → pandas, reference semi-joins, surrogates, row filters;
- ``profile``      the partition's profile (nulls, distincts, numeric percentiles/histograms, top values,
                   price per category via the products snapshot).

The adapter's overhead is ``(adapter - its gx) / its gx``: conversion, grouping and result mapping.

Besides wall time, the table shows the process's CPU time (user + system, all threads): other jobs on the
machine stretch wall time but barely change CPU time, so CPU time is the better guide to what a quiet
machine would show (Polars work that uses both cores makes CPU time exceed wall time).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.synthetic_data import quality_frames as S  # noqa: E402
from governance.quality.profile import profile_frame  # noqa: E402
from governance.quality.runner import suite_path  # noqa: E402
from governance.quality.suites import load_suite  # noqa: E402
from governance.quality.validation import _batch_definition, validate, validate_whole  # noqa: E402

DAY = "2026-10-07"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement (the best is reported)")
    parser.add_argument("--skip-plain", action="store_true", help="skip GX's plain whole-frame validate (slow)")
    args = parser.parse_args()

    import dagster as dg

    from assets.quality import expectation_check_result

    suite = load_suite(suite_path("clean.events"))
    t = time.perf_counter()
    products, users = S.products_frame(20_000), S.users_frame(200_000)
    frame = S.events_frame(DAY, args.rows, products, users)
    refs = {"clean.products": products, "clean.users": users}
    print(f"generated {frame.height:,} clean.events rows × {frame.width} columns "
          f"({frame.estimated_size() / 1e9:.2f} GB) in {time.perf_counter() - t:.1f}s; suite {suite.path.name}: "
          f"{len(suite.expectations)} expectations ({suite.counts()['error']} error, {suite.counts()['warn']} warn)",
          flush=True)
    _batch_definition()  # GX import and context creation are one-off per process, not per partition

    cpu: dict[str, list[float]] = {}

    def cpu_now() -> float:
        t = os.times()
        return t.user + t.system

    rows: dict[str, list[float]] = {"gx plain (whole frame, one validate)": [], "  conversion of the whole frame": [],
                                    "adapter end to end (conversion included)": [], "  of which gx validate": [],
                                    "  of which conversion + preparation": [], "profile": []}
    key = dg.AssetKey(["clean", "events"])
    result = None
    for _ in range(args.repeat):
        if not args.skip_plain:
            gc.collect()
            timings: dict[str, float] = {}
            c0 = cpu_now()
            plain = validate_whole(suite, frame, DAY, refs, result_format="BASIC", timings=timings)
            cpu.setdefault("gx plain (whole frame, one validate)", []).append(cpu_now() - c0)
            rows["gx plain (whole frame, one validate)"].append(timings["validate_s"])
            rows["  conversion of the whole frame"].append(timings["prepare_s"])
            assert plain.success, [r.expectation_config.type for r in plain.results if not r.success]
            del plain
        gc.collect()
        c0, t0 = cpu_now(), time.perf_counter()
        result = validate(suite, frame, DAY, refs)
        checks = [expectation_check_result(key, suite, r) for r in result.results]
        t1 = time.perf_counter()
        cpu.setdefault("adapter end to end (conversion included)", []).append(cpu_now() - c0)
        assert result.success and len(checks) == len(suite.expectations)
        rows["adapter end to end (conversion included)"].append(t1 - t0)
        rows["  of which gx validate"].append(result.gx_s)
        rows["  of which conversion + preparation"].append(result.convert_s)
        gc.collect()
        c0, t0 = cpu_now(), time.perf_counter()
        profile = profile_frame(frame, "clean.events", DAY, suite.profile_config, refs)
        rows["profile"].append(time.perf_counter() - t0)
        cpu.setdefault("profile", []).append(cpu_now() - c0)

    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    print(f"{'measurement':<44}{'best s':>9}{'median s':>10}{'cpu s':>9}")
    for name, values in rows.items():
        if values:
            c = f"{min(cpu[name]):>9.2f}" if name in cpu else ""
            print(f"{name:<44}{min(values):>9.2f}{statistics.median(values):>10.2f}{c}")
    best = {k: min(v) for k, v in rows.items() if v}
    adapter, inner = best["adapter end to end (conversion included)"], best["  of which gx validate"]
    print(f"\nadapter overhead over its own GX validate calls: {(adapter - inner) / inner:+.1%} "
          f"({adapter - inner:.2f}s: conversion, grouping, result mapping)")
    if "gx plain (whole frame, one validate)" in best:
        plain_s = best["gx plain (whole frame, one validate)"]
        print(f"adapter end to end vs GX's plain whole-frame validate: {adapter / plain_s:.2f}× the time "
              f"({adapter - plain_s:+.2f}s)")
    print(f"validate + profile: {adapter + best['profile']:.2f}s for {frame.height:,} rows "
          f"({len(suite.expectations)} expectations, {len(profile.columns)} column profiles)")


if __name__ == "__main__":
    main()
