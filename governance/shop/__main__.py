"""`python -m governance.shop --events N --out DIR`: generate, land, and report time and fault rates."""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
from pathlib import Path

import polars as pl

from governance.shop import ShopConfig, fault_rates_observed, generate_shop, land_shop


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--end", type=dt.date.fromisoformat, default=None, help="last day (default: yesterday UTC)")
    p.add_argument("--out", type=Path, default=Path("data"), help="writes <out>/landing and <out>/truth")
    p.add_argument("--rates", action="store_true", help="print observed vs configured fault rates")
    args = p.parse_args(argv)
    kwargs = {"end_date": args.end} if args.end else {}
    config = ShopConfig(n_events=args.events, days=args.days, seed=args.seed, **kwargs)
    t0 = time.perf_counter()
    shop = generate_shop(config)
    t1 = time.perf_counter()
    summary = land_shop(shop, args.out / "landing", args.out / "truth")
    t2 = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(summary)
    print(f"generate {t1 - t0:.1f}s, land {t2 - t1:.1f}s, peak RSS {peak_mib:,.0f} MiB")
    if args.rates:
        with pl.Config(tbl_rows=100):
            print(fault_rates_observed(shop))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
