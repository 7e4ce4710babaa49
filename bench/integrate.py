"""Clean → integrated throughput and peak memory: our Polars integration vs a vectorised pandas baseline.

Both implementations read the same clean layer (synthetic, ``tests/synthetic_data/integration_lake.py``, at
1M and 10M events over 14 days) and the same identity and catalog tables, then do the same work,
day by day, and write Parquet:

* admission: the same seven rules, quarantine rows kept whole (JSON record) with their reason;
* interactions (user × product × day counts, units, revenue, first/last time, weight);
* product activity (product × day counts, users, sessions, purchase sessions);
* sessions (ownership by first day, neighbouring days read, counts, products, users, queries);
* query clicks (as-of attribution of events to the latest earlier query of the session);
* product features and user profiles over every day (full recompute; top categories/brands).

Identity and catalog resolution (``user_keys``, ``product_history``) is built once, outside the
timing, and shared. Each implementation runs in its own subprocess so its peak RSS is its own; the
two outputs are compared (row counts and totals per table) so the baseline is known to do the
same work.

    python bench/integrate.py                    # 1M and 10M events
    python bench/integrate.py --events 1000000   # one size
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

EVENT_COLUMNS = ["event_id", "session_id", "user_id", "item_id", "event_type", "event_time", "price", "quantity",
                 "currency", "device"]
READ_COLUMNS = [*EVENT_COLUMNS, "_source_file", "_row_number"]
COUNTS = {"view": "views", "click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_gib() -> float:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: on Linux that survives
    exec and would report the parent's peak when the parent was larger."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---------------------------------------------------------------------------------------------
# polars: the real stage


def run_polars(lake_root: Path, out_root: Path) -> dict:
    import polars as pl

    from governance.integration.identity import resolve_users
    from governance.integration.pipeline import (
        DaySource,
        build_products_snapshot,
        build_users_snapshot,
        integrate_events_day,
        integrate_query_clicks_day,
        integrate_sessions_day,
        load_lookups,
    )
    from governance.storage import Lake

    lake = Lake.at(lake_root)
    identity = resolve_users(lake.read("clean", "users"))  # shared dims: outside the timing
    t0, c0 = time.perf_counter(), _cpu_seconds()
    users, product_keys = load_lookups(lake)
    source = DaySource(lake, users, product_keys)
    days = lake.partitions("clean", "events")
    events = 0
    for day in days:
        events += integrate_events_day(lake, day, source).reconciliation.clean_events
        integrate_sessions_day(lake, day, source)
        integrate_query_clicks_day(lake, day, source)
    products, _ = build_products_snapshot(lake, full=True)
    lake.write("integrated", "products", products)
    users_frame, _ = build_users_snapshot(lake, full=True, identity=identity)
    lake.write("integrated", "users", users_frame)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    summary = _summary_polars(lake, days)
    del pl
    return {"impl": "polars", "events": events, "seconds": seconds, "cpu_seconds": cpu,
            "peak_rss_gib": _peak_rss_gib(), "summary": summary}


def _summary_polars(lake, days) -> dict:
    import polars as pl

    out = {}
    for table, col in (("interactions", "events"), ("product_activity", "events"), ("sessions", "events"),
                       ("query_clicks", "clicks")):
        f = lake.scan("integrated", table).select(pl.len().alias("rows"), pl.col(col).sum().alias("total")).collect()
        out[table] = [int(f["rows"].item()), int(f["total"].item())]
    q = lake.scan("quarantine", "events", part="integration").select(pl.len()).collect().item()
    out["quarantine"] = [int(q), int(q)]
    for table, col in (("products", "views"), ("users", "orders")):
        f = lake.read("integrated", table)
        out[table] = [f.height, int(f[col].sum())]
    return out


# ---------------------------------------------------------------------------------------------
# pandas: an honest, vectorised baseline of the same joins and aggregations


def run_pandas(lake_root: Path, out_root: Path) -> dict:
    import numpy as np
    import pandas as pd

    from governance.integration.config import DEFAULT_CONFIG
    from governance.integration.events import RULE_REASONS
    from governance.integration.identity import resolve_users

    secret = DEFAULT_CONFIG.secret
    weights = DEFAULT_CONFIG.weights
    clean = lake_root / "clean"
    integrated = lake_root / "integrated"
    identity = resolve_users(__import__("polars").read_parquet(clean / "users" / "all" / "data.parquet"))
    attributes = identity.attributes.to_pandas()
    t0, c0 = time.perf_counter(), _cpu_seconds()

    user_keys = pd.read_parquet(integrated / "user_keys" / "all" / "data.parquet")
    registry = set(user_keys.loc[user_keys["origin"] == "registry", "source_system"])
    user_map = user_keys[["source_user_id", "user_key"]].rename(columns={"source_user_id": "user_id"})
    pkeys = pd.read_parquet(integrated / "product_keys" / "all" / "data.parquet",
                            columns=["source_product_id", "product_key"]).rename(
        columns={"source_product_id": "item_id"})
    days = sorted(p.name.removeprefix("date=") for p in (clean / "events").iterdir() if p.name.startswith("date="))
    qdays = {p.name.removeprefix("date=") for p in (clean / "queries").iterdir() if p.name.startswith("date=")}

    def write(table: str, frame: pd.DataFrame, day: str | None) -> None:
        path = out_root / table / ("all" if day is None else f"date={day}") / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False, compression="zstd")

    def read_all(directory: Path, columns: list[str] | None = None) -> pd.DataFrame:
        files = sorted(directory.glob("*/data.parquet"))
        return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)

    def system(ids: pd.Series) -> pd.Series:
        return ids.str.extract(r"^([a-z][a-z0-9_]*):", expand=False).fillna("shop")

    def admit(day: str, with_quarantine: bool) -> pd.DataFrame | None:
        path = clean / "events" / f"date={day}" / "data.parquet"
        if not path.exists():
            return None
        ev = pd.read_parquet(path, columns=READ_COLUMNS)
        n = len(ev)
        ev = ev.merge(pkeys, on="item_id", how="left").merge(user_map, on="user_id", how="left")
        missing = ev["user_id"].notna() & ev["user_key"].isna()
        if missing.any():
            cand = ev.loc[missing, "user_id"].drop_duplicates()
            cand = cand[~system(cand).isin(registry)]
            if len(cand):
                keys = {v: "u_" + hashlib.blake2b(v.encode(), key=secret[:64], digest_size=10).hexdigest()
                        for v in cand}
                ev.loc[missing, "user_key"] = ev.loc[missing, "user_id"].map(keys)
        required = ev[["event_id", "session_id", "item_id", "event_time"]].isna().any(axis=1)
        conditions = [
            required,
            ev["event_id"].duplicated(),
            ~ev["event_type"].isin(list(COUNTS)),
            ev["product_key"].isna(),
            ev["user_id"].notna() & ev["user_key"].isna(),
            (ev["price"] < 0).fillna(False) | (ev["quantity"] < 1).fillna(False),
            ev["user_id"].isna(),
        ]
        names = ["missing_value", "duplicate_event", "invalid_event_type", "unknown_product", "unknown_user",
                 "impossible_amount", "anonymous_event"]
        rule = pd.Series(np.select(conditions, names, default=""), index=ev.index)
        if with_quarantine:  # rejections only: anonymous events are routed aside, not quarantined
            rejected = (rule != "") & (rule != "anonymous_event")
            q = ev[rejected]
            records = q[EVENT_COLUMNS].to_json(orient="records", lines=True, date_format="iso").splitlines()
            quarantine = pd.DataFrame({
                "source": "events", "stage": "integration", "rule": rule[rejected].to_numpy(),
                "reason": rule[rejected].map(RULE_REASONS).to_numpy(), "file": q["_source_file"].to_numpy(),
                "row_number": q["_row_number"].to_numpy(), "key": q["event_id"].to_numpy(), "record": records,
                "partition": day})
            write("quarantine_events", quarantine, day)
        keep = (rule == "") | (rule == "anonymous_event")
        a = ev.loc[keep, ["event_id", "session_id", "user_key", "product_key", "event_type", "event_time", "price",
                          "quantity", "device"]].rename(columns={"product_key": "product_id"})
        a["is_anonymous"] = ev.loc[keep, "user_id"].isna().to_numpy()
        a.attrs["clean_rows"] = n
        return a

    def indicators(a: pd.DataFrame) -> pd.DataFrame:
        a = a.copy()
        for t, c in COUNTS.items():
            a[c] = (a["event_type"] == t).astype("int64")
        purchase = a["event_type"] == "purchase"
        qty = a["quantity"].fillna(1)
        a["units"] = np.where(purchase, qty, 0)
        a["revenue"] = np.where(purchase, a["price"] * qty, np.nan)
        return a

    aggs = dict(events=("event_id", "size"), **{c: (c, "sum") for c in COUNTS.values()}, units=("units", "sum"),
                revenue=("revenue", "sum"), first_event_at=("event_time", "min"), last_event_at=("event_time", "max"))

    def read_queries(day: str) -> pd.DataFrame | None:
        path = clean / "queries" / f"date={day}" / "data.parquet"
        if not path.exists():
            return None
        q = pd.read_parquet(path, columns=["query_id", "session_id", "user_id", "query_text", "query_time"])
        q = q.dropna(subset=["query_id", "session_id", "query_time"]).drop_duplicates("query_id")
        q = q.merge(user_map, on="user_id", how="left")
        return q.drop(columns="user_id")

    cache: dict[str, pd.DataFrame | None] = {}
    qcache: dict[str, pd.DataFrame | None] = {}

    def admitted(day: str, own: bool = False) -> pd.DataFrame | None:
        if day not in cache or own:
            cache[day] = admit(day, with_quarantine=own)
        return cache[day]

    def queries(day: str) -> pd.DataFrame | None:
        if day not in qcache:
            qcache[day] = read_queries(day) if day in qdays else None
        return qcache[day]

    def shift(day: str, n: int) -> str:
        return (pd.Timestamp(day) + pd.Timedelta(days=n)).strftime("%Y-%m-%d")

    events_total = 0
    for day in days:
        a = admitted(day, own=True)
        events_total += a.attrs["clean_rows"]
        for old in [d for d in cache if d < shift(day, -1)]:
            cache.pop(old)
            qcache.pop(old, None)
        x = indicators(a)
        date = pd.Timestamp(day).date()
        # interactions
        inter = x[~x["is_anonymous"]].groupby(["user_key", "product_id"], sort=False).agg(**aggs).reset_index()
        inter["date"] = date
        inter["weight"] = sum(inter[COUNTS[t]] * w for t, w in weights.items())
        write("interactions", inter, day)
        # product activity
        act = x.groupby("product_id", sort=False).agg(**aggs, anonymous_events=("is_anonymous", "sum"))
        act["users"] = x.dropna(subset=["user_key"]).drop_duplicates(["product_id", "user_key"]) \
            .groupby("product_id").size()
        sess = x.assign(p=x["event_type"] == "purchase").groupby(["product_id", "session_id"], sort=False)["p"].any()
        by = sess.groupby(level=0)
        act["sessions"] = by.size()
        act["purchase_sessions"] = by.sum()
        act = act.reset_index()
        act["users"] = act["users"].fillna(0).astype("int64")
        act["date"] = date
        write("product_activity", act, day)
        # sessions: owned by their first day; events of the next day complete them
        prev_a, prev_q = admitted(shift(day, -1)), queries(shift(day, -1))
        nxt_a, nxt_q = admitted(shift(day, 1)), queries(shift(day, 1))
        today_q = queries(day)
        earlier = pd.concat([f["session_id"] for f in (prev_a, prev_q) if f is not None] or
                            [pd.Series([], dtype="str")]).unique()
        candidates = pd.concat([a["session_id"]] + ([today_q["session_id"]] if today_q is not None else [])).unique()
        owned = pd.Index(candidates).difference(pd.Index(earlier))
        ev = x[x["session_id"].isin(owned)]
        if nxt_a is not None:
            ev = pd.concat([ev, indicators(nxt_a[nxt_a["session_id"].isin(owned)])])
        qq = pd.concat([f[f["session_id"].isin(owned)] for f in (today_q, nxt_q) if f is not None] or
                       [pd.DataFrame(columns=["session_id", "query_time", "user_key"])])
        s = ev.groupby("session_id", sort=False).agg(**aggs, user_key=("user_key", "min"),
                                                     users=("user_key", "nunique"), device=("device", "first"))
        s["products"] = ev.drop_duplicates(["session_id", "product_id"]).groupby("session_id").size()
        sq = qq.groupby("session_id").agg(queries=("query_time", "size"), q_start=("query_time", "min"),
                                          q_end=("query_time", "max"), q_user=("user_key", "min"))
        s = s.join(sq, how="outer")
        s["session_start"] = s[["first_event_at", "q_start"]].min(axis=1)
        s["session_end"] = s[["last_event_at", "q_end"]].max(axis=1)
        s["user_key"] = s["user_key"].fillna(s["q_user"])
        s["duration_s"] = (s["session_end"] - s["session_start"]).dt.total_seconds()
        s["converted"] = s["purchases"].fillna(0) > 0
        s["date"] = date
        write("sessions", s.reset_index(), day)
        # query clicks
        if today_q is not None:
            sids = today_q["session_id"].unique()
            qs = pd.concat([today_q.assign(own=True)] + ([nxt_q[nxt_q["session_id"].isin(sids)].assign(own=False)]
                                                          if nxt_q is not None else []))
            es = pd.concat([a[a["session_id"].isin(sids)]] + ([nxt_a[nxt_a["session_id"].isin(sids)]]
                                                              if nxt_a is not None else []))
            m = pd.merge_asof(es.sort_values("event_time"), qs[["session_id", "query_id", "query_time", "own"]]
                              .sort_values("query_time"), left_on="event_time", right_on="query_time",
                              by="session_id", direction="backward")
            m = indicators(m[m["own"].fillna(False).astype(bool)])
            m["action_time"] = m["event_time"].where(m["event_type"] != "view")
            qc = m.groupby(["query_id", "product_id"], sort=False).agg(
                **{c: (c, "sum") for c in COUNTS.values()}, first_action_at=("action_time", "min")).reset_index()
            qc = qc[qc["first_action_at"].notna()].merge(today_q, on="query_id", how="left")
            qc["seconds_to_first_action"] = (qc["first_action_at"] - qc["query_time"]).dt.total_seconds()
            qc["date"] = date
            write("query_clicks", qc, day)

    # product features over every day
    act = read_all(out_root / "product_activity")
    pa = act.groupby("product_id").agg(**{c: (c, "sum") for c in COUNTS.values()}, units_sold=("units", "sum"),
                                       revenue=("revenue", "sum"), sessions=("sessions", "sum"),
                                       purchase_sessions=("purchase_sessions", "sum"),
                                       first_seen_at=("first_event_at", "min"), last_seen_at=("last_event_at", "max"))
    history = pd.read_parquet(integrated / "product_history" / "all" / "data.parquet")
    current = history[history["is_current"]]
    reviews = read_all(clean / "reviews", ["review_id", "user_id", "product_id", "rating"]) \
        if (clean / "reviews").exists() else pd.DataFrame(columns=["review_id", "user_id", "product_id", "rating"])
    rv = reviews.groupby("product_id").agg(review_count=("review_id", "size"), mean_rating=("rating", "mean"))
    products = current.merge(pa, on="product_id", how="left").merge(rv, on="product_id", how="left")
    for c in [*COUNTS.values(), "units_sold", "sessions", "purchase_sessions", "review_count"]:
        products[c] = products[c].fillna(0).astype("int64")
    products["conversion_rate"] = (products["purchase_sessions"] / products["sessions"]).where(products["sessions"] > 0)
    write("products", products, None)

    # user profiles over every day
    inter = read_all(out_root / "interactions", ["user_key", "product_id", "date", "events", *COUNTS.values(),
                                                 "units", "revenue", "first_event_at", "last_event_at", "weight"])
    base = inter.groupby("user_key").agg(first_seen_at=("first_event_at", "min"), last_seen_at=("last_event_at", "max"),
                                         active_days=("date", "nunique"), events=("events", "sum"),
                                         **{c: (c, "sum") for c in COUNTS.values()}, units=("units", "sum"),
                                         monetary=("revenue", "sum"))
    base["last_purchase_date"] = inter[inter["purchases"] > 0].groupby("user_key")["date"].max()
    cats = current[["product_id", "category_l2", "brand"]]
    keyed = inter[["user_key", "product_id", "weight"]].merge(cats, on="product_id", how="left")
    for col, name in (("category_l2", "top_categories"), ("brand", "top_brands")):
        w = keyed.dropna(subset=[col]).groupby(["user_key", col], sort=False)["weight"].sum().reset_index()
        w = w.sort_values(["user_key", "weight", col], ascending=[True, False, True])
        base[name] = w.groupby("user_key").head(3).groupby("user_key")[col].agg("|".join)
    sessions = read_all(out_root / "sessions", ["user_key", "converted"]).dropna(subset=["user_key"])
    sg = sessions.groupby("user_key").agg(sessions=("converted", "size"), orders=("converted", "sum"))
    users = attributes.set_index("user_key").join(base, how="outer").join(sg, how="left")
    users["orders"] = users["orders"].fillna(0).astype("int64")
    as_of = users["last_seen_at"].max().date()
    users["recency_days"] = (pd.Timestamp(as_of) - pd.to_datetime(users["last_purchase_date"])).dt.days
    write("users", users.reset_index(), None)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0

    summary = {}
    for table, col in (("interactions", "events"), ("product_activity", "events"), ("sessions", "events"),
                       ("query_clicks", "clicks")):
        f = read_all(out_root / table, [col])
        summary[table] = [len(f), int(f[col].fillna(0).sum())]
    qn = len(read_all(out_root / "quarantine_events", ["rule"]))
    summary["quarantine"] = [qn, qn]
    summary["products"] = [len(products), int(products["views"].sum())]
    summary["users"] = [len(users), int(users["orders"].sum())]
    return {"impl": "pandas", "events": events_total, "seconds": seconds, "cpu_seconds": cpu,
            "peak_rss_gib": _peak_rss_gib(), "summary": summary}


# ---------------------------------------------------------------------------------------------
# driver


def prepare(root: Path, events: int, days: int) -> Path:
    from governance.integration.pipeline import build_catalog, build_identity, write_catalog, write_identity
    from tests.synthetic_data.integration_lake import write_synthetic_clean
    from governance.storage import Lake

    lake = Lake.at(root / "lake")
    t = time.perf_counter()
    facts = write_synthetic_clean(lake, events, days=days, seed=1)
    write_identity(lake, build_identity(lake))
    write_catalog(lake, build_catalog(lake))
    print(f"  prepared {facts.n_events:,} clean events over {len(facts.days)} days, {facts.n_users:,} users, "
          f"{facts.n_products:,} products in {time.perf_counter() - t:.1f}s (not timed)", flush=True)
    return lake.root


def worker(impl: str, lake_root: Path, out_root: Path, events: int, days: int) -> None:
    if impl == "prepare":
        prepare(lake_root.parent, events, days)
        result = {"impl": "prepare"}
    else:
        result = run_polars(lake_root, out_root) if impl == "polars" else run_pandas(lake_root, out_root)
    print("RESULT " + json.dumps(result), flush=True)


def measure(impl: str, lake_root: Path, out_root: Path, events: int = 0, days: int = 0) -> dict:
    """Run one step in a fresh interpreter (its own peak memory; the driver stays small)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run([sys.executable, str(HERE), "--worker", impl, "--lake", str(lake_root), "--out",
                           str(out_root), "--events", str(events), "--days", str(days)],
                          capture_output=True, text=True, env=env)
    for ln in proc.stdout.splitlines():
        if not ln.startswith("RESULT "):
            print(ln, flush=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{impl} worker failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the two implementations alternately this many times and keep each one's best "
                             "(the machine is shared: the best run is the least disturbed one)")
    parser.add_argument("--worker", choices=["prepare", "polars", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.lake, args.out, args.events[0], args.days)
        return 0

    rows = []
    for n in args.events:
        root = Path(tempfile.mkdtemp(prefix=f"bench-integrate-{n}-", dir=args.workdir))
        try:
            print(f"\n== {n:,} events", flush=True)
            lake_root = root / "lake"
            measure("prepare", lake_root, root, n, args.days)
            results = {}
            for attempt in range(args.repeat):
                for impl in ("polars", "pandas"):
                    out = root / f"out-{impl}"
                    shutil.rmtree(out, ignore_errors=True)
                    r = measure(impl, lake_root, out)
                    print(f"  {impl:7s} run {attempt + 1}: {r['seconds']:8.2f}s wall, {r['cpu_seconds']:8.2f} CPU-s, "
                          f"{r['events'] / r['seconds'] / 1e6:6.2f}M events/s, peak RSS {r['peak_rss_gib']:.2f} GiB",
                          flush=True)
                    if impl not in results or r["seconds"] < results[impl]["seconds"]:
                        results[impl] = r
            same = results["polars"]["summary"] == results["pandas"]["summary"]
            if not same:
                print("  outputs differ (rows, total) per table:")
                for t in results["polars"]["summary"]:
                    print(f"    {t:17s} polars {results['polars']['summary'][t]}  pandas "
                          f"{results['pandas']['summary'].get(t)}")
            rows.append((n, results, same))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    print("\nclean → integrated (admission, interactions, product activity, sessions, query clicks, "
          "product features, user profiles)")
    print(f"{'events':>12} {'impl':>7} {'wall s':>8} {'M ev/s':>7} {'CPU s':>8} {'M ev/CPU-s':>10} "
          f"{'peak GiB':>9} {'speed-up wall':>14} {'speed-up CPU':>13} {'same output':>12}")
    for n, results, same in rows:
        p, d = results["polars"], results["pandas"]
        for r in (p, d):
            wall = d["seconds"] / r["seconds"]
            cpu = d["cpu_seconds"] / r["cpu_seconds"]
            print(f"{n:>12,} {r['impl']:>7} {r['seconds']:>8.2f} {r['events'] / r['seconds'] / 1e6:>7.2f} "
                  f"{r['cpu_seconds']:>8.2f} {r['events'] / r['cpu_seconds'] / 1e6:>10.2f} {r['peak_rss_gib']:>9.2f} "
                  f"{wall:>13.1f}x {cpu:>12.1f}x {str(same):>12}")
    print(f"\ngoals: >= 2M events/s at 10M events, >= 3x pandas, <= 4 GiB peak. CPU: {os.cpu_count()} cores "
          f"(shared; run side by side so both see the same load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
