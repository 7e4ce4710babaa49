"""Recommendation: training time and peak memory per recall model, and recommendations/s for every user,
at the demo size and at 10M events — beside a straightforward pandas + SciPy item-item of the same recall.

The data is synthesized here (the integrated layer's shape: user × product × day weights, session
event sequences, a catalogue with categories and MiniLM-sized embeddings), with taste clusters so
item-item has structure to find: ``n/60`` users, ``clamp(n/150, 300, 20 000)`` products in clusters
of 100, 60% of a user's events in their cluster (Zipf inside it), the rest Zipf over the catalogue,
sessions of ~8 events, over 7 days (demo) or 14 (10M). It is written once to Parquet; each model
then runs in its own subprocess (so its peak RSS is its own): read, build the history, fit, and
recommend a top-10 for every user.

The pandas + SciPy baseline does the same item-item recall the plain way: a pandas groupby to the
user × item table, ``Bᵀ B`` as one sparse product (no blocking, no neighbour pruning), Jaccard on
its non-zeros, ``A S`` for every user and ``np.argpartition`` for the top 10. Both item-item
implementations score the same held-out day, so the table shows they do the same work.

    python bench/reco.py                      # 200k (demo size) and 10M events
    python bench/reco.py --events 200000      # one size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))

MODELS = ["popularity", "itemknn", "ease", "als", "sknn", "content", "pandas_itemknn"]
WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}


def _peak_rss_gib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def synthesize(n_events: int, days: int, out: Path, seed: int = 0) -> dict:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_users = max(50, n_events // 60)
    n_items = int(min(20_000, max(300, n_events // 150)))
    cluster_size = 100
    n_clusters = max(1, n_items // cluster_size)
    item_cluster = np.arange(n_items) % n_clusters
    zipf = 1.0 / np.arange(1, n_items + 1) ** 1.05
    zipf /= zipf.sum()
    user_cluster = rng.integers(0, n_clusters, n_users)
    activity = rng.pareto(1.5, n_users) + 1
    ev_user = rng.choice(n_users, n_events, p=activity / activity.sum())
    in_cluster = rng.random(n_events) < 0.6
    # within a cluster: items of that cluster, Zipf by their global rank
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    pos = (rng.zipf(1.3, n_events) - 1) % cluster_size
    cl = user_cluster[ev_user]
    sizes = np.array([len(m) for m in members])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(members)
    local = flat[offsets[cl] + pos % sizes[cl]]
    ev_item = np.where(in_cluster, local, rng.choice(n_items, n_events, p=zipf))
    ev_type = rng.choice(4, n_events, p=[0.70, 0.20, 0.07, 0.03])
    # sessions: a user's events in order, cut every ~8 events; days spread over the window
    order = np.argsort(ev_user, kind="stable")
    ev_user, ev_item, ev_type = ev_user[order], ev_item[order], ev_type[order]
    within = np.arange(n_events) - np.searchsorted(ev_user, ev_user)
    session_no = within // 8
    day_of_session = rng.integers(0, days, n_events)
    sess_key = ev_user.astype(np.int64) * 100_000 + session_no
    _, first = np.unique(sess_key, return_index=True)
    sess_day = np.empty(n_events, np.int64)
    sess_day[:] = day_of_session[np.searchsorted(sess_key[first], sess_key)]
    ev_day = sess_day
    t0 = 1_790_000_000 * 1_000_000
    t = t0 + ev_day * 86_400_000_000 + rng.integers(0, 80_000, n_events) * 1_000_000 + within * 30_000_000
    types = np.array(list(WEIGHTS))
    ev = pl.DataFrame({"user_key": pl.Series(ev_user).cast(pl.String).str.zfill(7).str.pad_start(8, "u"),
                       "product_id": pl.Series(ev_item).cast(pl.String).str.zfill(6).str.pad_start(7, "p"),
                       "event_type": types[ev_type], "day": ev_day,
                       "session_id": pl.Series(sess_key).cast(pl.String),
                       "event_time": pl.Series(t).cast(pl.Datetime("us", "UTC"))})
    w = pl.col("event_type").replace_strict(WEIGHTS, return_dtype=pl.Float64)
    start = pl.date(2026, 10, 1)
    inter = (ev.group_by("user_key", "product_id", "day").agg(
        pl.len().alias("events"), (pl.col("event_type") == "view").sum().alias("views"),
        (pl.col("event_type") == "click").sum().alias("clicks"),
        (pl.col("event_type") == "add_to_cart").sum().alias("add_to_carts"),
        (pl.col("event_type") == "purchase").sum().alias("purchases"), w.sum().alias("weight"),
        pl.col("event_time").max().alias("last_event_at"))
        .with_columns((start + pl.duration(days=pl.col("day"))).alias("date"),
                      pl.lit(0).alias("units"), pl.lit(0.0).alias("revenue")).drop("day"))
    ids = pl.Series(np.arange(n_items)).cast(pl.String).str.zfill(6).str.pad_start(7, "p")
    emb = rng.normal(size=(n_clusters, 384)).astype(np.float32)[item_cluster] + \
        0.5 * rng.normal(size=(n_items, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    products = pl.DataFrame({"product_id": ids, "category_l1": pl.Series(item_cluster % 10).cast(pl.String),
                             "category_l2": pl.Series(item_cluster).cast(pl.String), "brand": "acme",
                             "title": ids, "price": np.round(rng.lognormal(3.5, 0.8, n_items), 2),
                             "currency": "USD"})
    out.mkdir(parents=True, exist_ok=True)
    inter.write_parquet(out / "interactions.parquet")
    ev.drop("day").write_parquet(out / "events.parquet")
    products.write_parquet(out / "products.parquet")
    pl.DataFrame({"product_id": ids, "embedding": pl.Series(emb, dtype=pl.Array(pl.Float32, 384))}).write_parquet(
        out / "embeddings.parquet")
    return {"events": n_events, "users": n_users, "items": n_items, "interactions": inter.height,
            "days": days}


def _data(root: Path):
    import polars as pl

    from governance.recommendation.data import RecoData

    inter = pl.read_parquet(root / "interactions.parquet")
    return RecoData(inter, pl.read_parquet(root / "events.parquet"), pl.read_parquet(root / "products.parquet"),
                    pl.DataFrame({"user_key": inter["user_key"].unique()}),
                    embeddings=pl.read_parquet(root / "embeddings.parquet"))


def child(root: Path, model: str) -> dict:
    import polars as pl

    from governance.recommendation.data import temporal_split
    from governance.recommendation.metrics import ranking_metrics

    t = time.perf_counter()
    data = _data(root)
    split = temporal_split(data, 1)
    load_s = time.perf_counter() - t
    rss_data = _peak_rss_gib()
    users = split.train.interactions["user_key"].unique().sort().to_list()
    if model == "pandas_itemknn":
        fit_s, rec_s, recs = pandas_itemknn(split.train.interactions, users)
    else:
        from governance.recommendation.recall import EASE, SKNN, Content, ImplicitMF, ItemKNN, Popularity
        from governance.recommendation.recall.base import History
        from governance.recommendation.train import item_space

        make = {"popularity": lambda: Popularity(), "itemknn": lambda: ItemKNN(basis="user", half_life_days=None),
                "ease": lambda: EASE(l2=200.0, max_items=6000), "als": lambda: ImplicitMF("als", factors=64),
                "sknn": lambda: SKNN(), "content": lambda: Content()}
        items = item_space(split.train)
        t = time.perf_counter()
        m = make[model]().fit(split.train, items)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        hist = History.build(split.train, items, users, split.cutoff)
        recs = m.recommend(hist, 10)
        rec_s = time.perf_counter() - t
    test = split.test.filter(pl.col("user_key").is_in(pl.Series(users).implode()))
    metrics = ranking_metrics(recs, test, (10,))
    return {"model": model, "load_s": load_s, "fit_s": fit_s, "recommend_s": rec_s,
            "recs_per_s": len(users) / max(rec_s, 1e-9), "users": len(users), "peak_rss_gib": _peak_rss_gib(),
            "data_rss_gib": rss_data, "ndcg@10": metrics.get("ndcg@10", float("nan")),
            "hr@10": metrics.get("hr@10", float("nan"))}


def pandas_itemknn(inter, users: list[str], k: int = 10):
    """The plain way: pandas pivot to sparse, one sparse Bᵀ B, Jaccard on its non-zeros, A S, argpartition."""
    import numpy as np
    import pandas as pd
    import polars as pl
    import scipy.sparse as sp

    t = time.perf_counter()
    df = inter.select("user_key", "product_id", "weight").to_pandas()
    df = df.groupby(["user_key", "product_id"], as_index=False)["weight"].sum()
    u_codes, u_index = pd.factorize(df["user_key"], sort=True)
    i_codes, i_index = pd.factorize(df["product_id"], sort=True)
    A = sp.csr_matrix((df["weight"].to_numpy(np.float32), (u_codes, i_codes)), shape=(len(u_index), len(i_index)))
    B = (A > 0).astype(np.float32)
    C = (B.T @ B).tocoo()
    deg = np.asarray(B.sum(axis=0)).ravel()
    jac = C.data / (deg[C.row] + deg[C.col] - C.data)
    keep = C.row != C.col
    S = sp.csr_matrix((jac[keep].astype(np.float32), (C.row[keep], C.col[keep])), shape=C.shape)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    rows_out, items_out, ranks = [], [], []
    for start in range(0, A.shape[0], 2048):
        scores = (A[start:start + 2048] @ S).toarray()
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        rows_out.append(np.repeat(np.arange(start, start + top.shape[0]), k))
        items_out.append(top.ravel())
        ranks.append(np.tile(np.arange(1, k + 1), top.shape[0]))
    recs = pl.DataFrame({"user_key": np.asarray(u_index)[np.concatenate(rows_out)],
                         "product_id": np.asarray(i_index)[np.concatenate(items_out)],
                         "rank": np.concatenate(ranks)})
    return fit_s, time.perf_counter() - t, recs


def run_size(n_events: int, days: int, timeout: int, models: list[str] = MODELS) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-reco-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        info = synthesize(n_events, days, root)
        print(f"\n{n_events:,} events: {info['users']:,} users, {info['items']:,} products, "
              f"{info['interactions']:,} user×product×day rows over {days} days "
              f"(synthesized in {time.perf_counter() - t:.1f}s)", flush=True)
        for model in models:
            try:
                r = subprocess.run([sys.executable, str(HERE), "--child", str(root), model], capture_output=True,
                                   text=True, timeout=timeout)
                if r.returncode:
                    print(f"  {model}: failed ({r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode})")
                    rows.append({"events": n_events, "model": model, "status": "failed"})
                    continue
                row = {"events": n_events, **json.loads(r.stdout.strip().splitlines()[-1]), "status": "ok"}
            except subprocess.TimeoutExpired:
                print(f"  {model}: over {timeout}s")
                rows.append({"events": n_events, "model": model, "status": f"timeout {timeout}s"})
                continue
            rows.append(row)
            print(f"  {model:15s} fit {row['fit_s']:7.1f}s  recommend {row['recommend_s']:7.1f}s "
                  f"({row['recs_per_s']:9,.0f} users/s)  peak {row['peak_rss_gib']:5.2f} GiB "
                  f"(data {row['data_rss_gib']:4.2f})  NDCG@10 {row['ndcg@10']:.4f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="*", default=[200_000, 10_000_000])
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per model and size")
    parser.add_argument("--models", nargs="*", default=MODELS, choices=MODELS, help="a subset of the models")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return 0
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at start")
    rows = []
    for n in args.events:
        rows += run_size(n, 7 if n <= 1_000_000 else 14, args.timeout, args.models)
    import polars as pl

    with pl.Config(tbl_rows=40, tbl_cols=20, tbl_width_chars=200):
        print(pl.DataFrame(rows).select([c for c in ("events", "model", "status", "fit_s", "recommend_s",
                                                     "recs_per_s", "peak_rss_gib", "data_rss_gib", "ndcg@10")
                                         if c in pl.DataFrame(rows).columns]))
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
