"""Evaluation with published protocols, so the figures compare with others' — one command, and assets.

``shop``        the generated (or any integrated) shop: temporal split, last day held out; Recall, NDCG,
                MRR, HR @10/@20, catalogue coverage, popularity bias, cold-start item recall, per
                model and for the hybrid (``governance.recommendation.train``).
``movielens``   MovieLens-100k with the Microsoft Recommenders protocol: 75/25 split stratified by
                item (``python_stratified_split(ratio=0.75, filter_by="item", seed=42)``: each item's
                ratings shuffled with ``RandomState(42)``, the first ``round(0.75 n)`` train), every
                test rating relevant (binary), items seen in training removed, k = 10, metrics over
                the users with recommendations. Published NDCG@10: SAR 0.382–0.394, BPR 0.442–0.445,
                BiVAE 0.469–0.475. Hyper-parameters are chosen on a validation split of the
                *training* ratings (the same protocol inside it), never on the test ratings.
``sessions``    next-item prediction on YOOCHOOSE (session-rec's prepared 100k sample, its own
                train/test files) and the DIGINETICA sample (split by time: the last 7 days' sessions
                are the test, SR-GNN's preprocessing: sessions of length ≥ 2, items seen ≥ 5 times,
                test items known in training): every position of each test session predicts the next
                item from the prefix (session-rec's protocol), HR@20 and MRR@20 over the full
                catalogue, for V-SKNN, item-item (last item's neighbours) and popularity.

    python -m governance.recommendation.evaluate movielens [--data ../shared/data]
    python -m governance.recommendation.evaluate sessions
    python -m governance.recommendation.evaluate shop [--data-root data]
    python -m governance.recommendation.evaluate all
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from governance.recommendation import metrics as M
from governance.recommendation.data import Index
from governance.recommendation.recall.base import topk
from governance.recommendation.recall.itemknn import similarity_topn
from governance.recommendation.recall.mf import EASE, ImplicitMF
from governance.recommendation.recall.sknn import SKNN

ML_ANCHORS = {"SAR": "0.382–0.394", "BPR": "0.442–0.445", "BiVAE": "0.469–0.475"}
SESSION_ANCHORS = "full YOOCHOOSE-clicks (session-rec): V-SKNN HR@20 0.651 / MRR@20 0.287, GRU4Rec 0.649 / 0.289"


# ------------------------------------------------------------------------------------------------
# MovieLens-100k, Microsoft Recommenders protocol


def read_movielens(root: Path) -> pl.DataFrame:
    """user, item, rating, timestamp from RecBole's ``ml-100k.inter`` (typed header suffixes stripped)."""
    path = root / "movielens100k_recbole" / "ml-100k.inter"
    df = pl.read_csv(path, separator="\t")
    return df.rename({c: c.split(":")[0] for c in df.columns}).rename({"user_id": "user", "item_id": "item"})


def stratified_split(df: pl.DataFrame, ratio: float = 0.75, by: str = "item", seed: int = 42
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Microsoft Recommenders' ``python_stratified_split``: per group (in first-appearance order of
    the rows), the group's rows in file order shuffled by ``RandomState(seed).permutation`` (what
    ``DataFrame.sample(frac=1, random_state=seed)`` draws), the first ``round(ratio·n)`` to train."""
    d = df.with_row_index("__row")
    sizes = d.group_by(by).agg(pl.len().alias("n"))["n"].unique().to_list()
    # one permutation per group size (the same seed for every group, as the reference does)
    perm_rank = {}
    for n in sizes:
        p = np.random.RandomState(seed).permutation(n)
        rank = np.empty(n, np.int64)
        rank[p] = np.arange(n)
        perm_rank[n] = rank
    d = d.with_columns(pl.int_range(pl.len()).over(by).alias("__pos"), pl.len().over(by).alias("__n"))
    pos, n = d["__pos"].to_numpy(), d["__n"].to_numpy()
    shuffled = np.empty(d.height, np.int64)
    for size in sizes:
        m = n == size
        shuffled[m] = perm_rank[size][pos[m]]
    cut = np.floor(ratio * n + 0.5)  # Python's round() is half-to-even; group sizes make ties rare
    cut = np.where(np.isclose(ratio * n % 1, 0.5), np.round(ratio * n), cut)
    train_mask = shuffled < cut
    base = d.drop("__row", "__pos", "__n")
    return base.filter(pl.Series(train_mask)), base.filter(pl.Series(~train_mask))


@dataclass
class MatrixTask:
    train: sp.csr_matrix
    users: Index
    items: Index
    truth: pl.DataFrame  # user, item (relevant)


def _matrix_task(train: pl.DataFrame, test: pl.DataFrame) -> MatrixTask:
    users = Index.of(train["user"].cast(pl.String).to_list())
    items = Index.of(train["item"].cast(pl.String).to_list())
    u = users.lookup(train["user"].cast(pl.String))
    i = items.lookup(train["item"].cast(pl.String))
    X = sp.csr_matrix((np.ones(train.height, np.float32), (u, i)), shape=(len(users), len(items)))
    X.data[:] = 1.0
    truth = test.select(pl.col("user").cast(pl.String), pl.col("item").cast(pl.String))
    return MatrixTask(X, users, items, truth.filter(pl.col("user").is_in(users.ids.tolist())))


def _lists(task: MatrixTask, scores: np.ndarray, k: int) -> pl.DataFrame:
    rows, vals = topk(scores, k, exclude=task.train)
    return pl.DataFrame({"user": np.repeat(task.users.ids, rows.shape[1]), "item": task.items.ids[rows.ravel()],
                         "rank": np.tile(np.arange(1, rows.shape[1] + 1), rows.shape[0]),
                         "score": vals.ravel()}).filter(pl.col("score").is_finite())


def _ml_metrics(task: MatrixTask, recs: pl.DataFrame, k: int = 10) -> dict[str, float]:
    m = M.ranking_metrics(recs, task.truth, (k,), key="user", item="item")
    return {f"ndcg@{k}": m[f"ndcg@{k}"], f"precision@{k}": m[f"precision@{k}"], f"recall@{k}": m[f"recall@{k}"],
            f"map@{k}": m[f"map@{k}"], "users": m["users"]}


def _sar(task: MatrixTask) -> np.ndarray:
    sim = similarity_topn(task.train, "jaccard", neighbours=len(task.items))
    return (task.train @ sim).toarray()


ML_MODELS: dict[str, Callable[[MatrixTask, dict], np.ndarray]] = {
    "ease": lambda t, p: EASE(**p).fit_matrix(t.train, t.items).score_matrix(t.train),
    "sar_jaccard": lambda t, p: _sar(t),
    "bpr": lambda t, p: ImplicitMF("bpr", **p).fit_matrix(t.train, t.items, t.users).score_matrix(t.train, t.users),
    "als": lambda t, p: ImplicitMF("als", **p).fit_matrix(t.train, t.items, t.users).score_matrix(t.train, t.users),
}
ML_GRID: dict[str, list[dict]] = {
    "ease": [{"l2": v, "max_items": 5000} for v in (50.0, 100.0, 200.0, 400.0, 800.0)],
    "sar_jaccard": [{}],
    "bpr": [{"factors": f, "iterations": 100, "learning_rate": 0.01, "regularization": 0.001} for f in (64, 200)],
    "als": [{"factors": 64, "iterations": 15, "regularization": 0.05, "alpha": a} for a in (1.0, 10.0)],
}


def movielens(root: Path, k: int = 10, log: Callable[[str], None] = print, models: list[str] | None = None,
              split_by: str = "item") -> pl.DataFrame:
    """Every model: hyper-parameters chosen on a validation split of the training ratings, then
    refitted on all training ratings and measured on the test ratings."""
    df = read_movielens(root)
    train, test = stratified_split(df, 0.75, split_by, 42)
    inner_train, inner_val = stratified_split(train, 0.75, split_by, 42)
    outer, inner = _matrix_task(train, test), _matrix_task(inner_train, inner_val)
    rows = []
    for name in models or list(ML_MODELS):
        best, best_score = ML_GRID[name][0], -1.0
        if len(ML_GRID[name]) > 1:
            for params in ML_GRID[name]:
                s = _ml_metrics(inner, _lists(inner, ML_MODELS[name](inner, params), k), k)[f"ndcg@{k}"]
                if s > best_score:
                    best, best_score = params, s
        t = time.perf_counter()
        scores = ML_MODELS[name](outer, best)
        seconds = time.perf_counter() - t
        m = _ml_metrics(outer, _lists(outer, scores, k), k)
        rows.append({"dataset": "movielens-100k", "split": f"stratified by {split_by} 75/25 seed 42", "model": name,
                     "params": str(best), **m, "train_s": seconds})
        log(f"ml-100k {name} {best}: ndcg@{k} {m[f'ndcg@{k}']:.4f} precision@{k} {m[f'precision@{k}']:.4f} "
            f"map@{k} {m[f'map@{k}']:.4f} ({seconds:.1f}s)")
    return pl.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# session-based next-item prediction


def read_yoochoose(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    d = root / "yoochoose_100k_sessionrec"

    def read(name: str) -> pl.DataFrame:
        f = pl.read_csv(d / name, separator="\t", schema_overrides={"SessionId": pl.String, "ItemId": pl.String})
        return f.select(pl.col("SessionId").alias("session"), pl.col("ItemId").alias("item"),
                        (pl.col("Time") * 1e6).cast(pl.Int64).alias("t"))
    return read("yoochoose-clicks-100k_train_full.txt"), read("yoochoose-clicks-100k_test.txt")


def read_diginetica(root: Path, test_days: int = 7, min_item: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """SR-GNN's preprocessing of DIGINETICA, on the sample: order by timeframe within a session,
    sessions of length ≥ 2 and items seen ≥ 5 times, the last ``test_days`` days' sessions as test."""
    f = pl.read_csv(root / "diginetica_sample" / "sample_train-item-views.csv", separator=";",
                    schema_overrides={"session_id": pl.String, "item_id": pl.String, "user_id": pl.String})
    f = f.select(pl.col("session_id").alias("session"), pl.col("item_id").alias("item"),
                 pl.col("eventdate").str.to_date().alias("day"), pl.col("timeframe").cast(pl.Int64))
    f = f.with_columns((pl.col("day").cast(pl.Datetime("us")).dt.epoch("us") + pl.col("timeframe") * 1000).alias("t"))
    f = f.filter(pl.len().over("session") > 1)
    f = f.filter(pl.len().over("item") >= min_item)
    f = f.filter(pl.len().over("session") > 1)
    session_day = f.group_by("session").agg(pl.col("day").max())
    last = session_day["day"].max()
    test_ids = session_day.filter(pl.col("day") > last - pl.duration(days=test_days))["session"]
    train = f.filter(~pl.col("session").is_in(test_ids.implode()))
    test = f.filter(pl.col("session").is_in(test_ids.implode()) & pl.col("item").is_in(train["item"].implode()))
    test = test.filter(pl.len().over("session") > 1)
    return train.select("session", "item", "t"), test.select("session", "item", "t")


@dataclass
class SessionTask:
    items: Index
    train: sp.csr_matrix  # train sessions × items (binary)
    prefixes: sp.csr_matrix  # one row per prediction: the prefix's items with their 1-based positions
    targets: np.ndarray  # item row to predict
    recency: np.ndarray  # per train session: 0 = the most recent (V-SKNN samples recent neighbours)


def session_task(train: pl.DataFrame, test: pl.DataFrame) -> SessionTask:
    items = Index.of(train["item"].to_list())
    sessions = Index.of(train["session"].to_list())
    s, i = sessions.lookup(train["session"]), items.lookup(train["item"])
    S = sp.csr_matrix((np.ones(train.height, np.float32), (s, i)), shape=(len(sessions), len(items)))
    S.data[:] = 1.0
    t = (test.sort("session", "t").with_columns(pl.int_range(1, pl.len() + 1).over("session").alias("pos"))
         .with_columns(pl.Series("row", items.lookup(test.sort("session", "t")["item"]))))
    t = t.filter(pl.col("row") >= 0)
    t = t.with_columns(pl.int_range(1, pl.len() + 1).over("session").alias("pos"), pl.len().over("session").alias("n"))
    # prediction j of a session (j = 1..n-1) sees positions 1..j and predicts position j+1
    preds = t.filter(pl.col("pos") < pl.col("n")).select("session", pl.col("pos").alias("j"))
    preds = preds.with_row_index("pred")
    prefix = preds.join(t.select("session", "pos", "row"), on="session").filter(pl.col("pos") <= pl.col("j"))
    # an item seen twice in a prefix keeps its latest position
    prefix = prefix.group_by("pred", "row").agg(pl.col("pos").max())
    P = sp.csr_matrix((prefix["pos"].to_numpy().astype(np.float32), (prefix["pred"].to_numpy(), prefix["row"].to_numpy())),
                      shape=(preds.height, len(items)))
    targets = preds.join(t.select("session", pl.col("pos").alias("j1"), "row").with_columns(pl.col("j1") - 1),
                         left_on=["session", "j"], right_on=["session", "j1"], how="left").sort("pred")["row"].to_numpy()
    ends = train.group_by("session").agg(pl.col("t").max())
    t_end = np.zeros(len(sessions), np.int64)
    t_end[sessions.lookup(ends["session"])] = ends["t"].to_numpy()
    recency = np.argsort(np.argsort(-t_end, kind="stable"), kind="stable")
    return SessionTask(items, S, P, targets, recency)


def _hits(scores_fn: Callable[[sp.csr_matrix], np.ndarray], task: SessionTask, k: int = 20,
          batch: int = 2048) -> dict[str, float]:
    hr = mrr = 0.0
    for start in range(0, task.prefixes.shape[0], batch):
        s = scores_fn(task.prefixes[start:start + batch])
        rows, _ = topk(s, k)
        tgt = task.targets[start:start + batch][:, None]
        hit = rows == tgt
        pos = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)
        hr += float((pos > 0).sum())
        mrr += float(np.where(pos > 0, 1.0 / np.maximum(pos, 1), 0.0).sum())
    n = task.prefixes.shape[0]
    return {f"hr@{k}": hr / n, f"mrr@{k}": mrr / n, "predictions": float(n)}


def session_models(task: SessionTask) -> dict[str, Callable[[sp.csr_matrix], np.ndarray]]:
    sknn = SKNN(k=100, sample_size=500)
    sknn.items = task.items
    sknn.set_sessions(task.train, -task.recency)  # recency 0 = the most recent
    pop = np.asarray(task.train.sum(axis=0)).ravel().astype(np.float32)
    sim = similarity_topn(task.train, "cosine", neighbours=200)

    def last_item(P: sp.csr_matrix) -> sp.csr_matrix:
        P = P.tocsr()
        lens = np.diff(P.indptr)
        starts = P.indptr[:-1]
        rows, cols = [], []
        nonempty = np.flatnonzero(lens)
        if nonempty.size:
            best = np.maximum.reduceat(P.data, starts[nonempty])
            per_nnz = np.repeat(best, lens[nonempty])
            is_last = P.data == per_nnz
            rr = np.repeat(np.arange(P.shape[0]), lens)[is_last]
            rows, cols = rr, P.indices[is_last]
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=P.shape)

    return {
        "vsknn": sknn.score_sequences,
        "item_item": lambda P: (last_item(P) @ sim).toarray(),
        "popularity": lambda P: np.broadcast_to(pop, (P.shape[0], pop.size)).copy(),
    }


def sessions(root: Path, log: Callable[[str], None] = print, k: int = 20) -> pl.DataFrame:
    rows = []
    for name, reader in (("yoochoose-100k", read_yoochoose), ("diginetica-sample", read_diginetica)):
        train, test = reader(root)
        task = session_task(train, test)
        if task.prefixes.shape[0] == 0:
            log(f"{name}: no test predictions after preprocessing")
            continue
        for model, fn in session_models(task).items():
            t = time.perf_counter()
            m = _hits(fn, task, k)
            rows.append({"dataset": name, "model": model, **m, "items": float(len(task.items)),
                         "train_sessions": float(task.train.shape[0]), "seconds": time.perf_counter() - t})
            log(f"{name} {model}: HR@{k} {m[f'hr@{k}']:.4f} MRR@{k} {m[f'mrr@{k}']:.4f} "
                f"({int(m['predictions'])} predictions)")
    return pl.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# the shop


def shop(lake, log: Callable[[str], None] = print) -> pl.DataFrame:
    from governance.recommendation.data import load
    from governance.recommendation.train import extra_recalls, train

    result = train(load(lake), extra=extra_recalls(), log=log)
    return result.metrics


def run_public(root: Path | None, lake=None, log: Callable[[str], None] = print) -> pl.DataFrame:
    """MovieLens-100k and the session samples in one table (with the anchors), written to reco.public_evaluation.

    Returns an empty frame when the shared data is absent.
    """
    frames = []
    if root is not None and (root / "movielens100k_recbole").exists():
        ml = movielens(root, log=log)
        frames.append(ml.select("dataset", "model", pl.col("ndcg@10").alias("ndcg@10"), "precision@10", "map@10",
                                pl.lit(None, pl.Float64).alias("hr@20"), pl.lit(None, pl.Float64).alias("mrr@20"),
                                pl.col("train_s").alias("seconds"), "params",
                                pl.lit("published NDCG@10 " + ", ".join(f"{k} {v}" for k, v in ML_ANCHORS.items()))
                                .alias("anchor")))
    if root is not None and (root / "yoochoose_100k_sessionrec").exists():
        ss = sessions(root, log=log)
        frames.append(ss.select("dataset", "model", pl.lit(None, pl.Float64).alias("ndcg@10"),
                                pl.lit(None, pl.Float64).alias("precision@10"), pl.lit(None, pl.Float64).alias("map@10"),
                                "hr@20", "mrr@20", "seconds", pl.lit("").alias("params"),
                                pl.lit(SESSION_ANCHORS).alias("anchor")))
    out = pl.concat(frames) if frames else pl.DataFrame()
    if lake is not None and out.height:
        from governance.recommendation.pipeline import write_tables

        write_tables(lake, public_evaluation=out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m governance.recommendation.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["movielens", "sessions", "shop", "all"])
    parser.add_argument("--data", type=Path, default=None, help="the shared real data (default: ../shared/data)")
    parser.add_argument("--data-root", default=None, help="the deployment's data root (shop)")
    parser.add_argument("--split-by", default="item", choices=["item", "user"], help="MovieLens stratification")
    args = parser.parse_args(argv)
    from governance.settings import Settings

    settings = Settings.load(data_root=args.data_root)
    root = args.data or settings.shared_data
    pl.Config.set_tbl_rows(40)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    if args.what in ("movielens", "all"):
        if root is None or not (root / "movielens100k_recbole").exists():
            print("MovieLens-100k not found (pass --data)")
        else:
            print(movielens(root, split_by=args.split_by))
            print("published NDCG@10 (same protocol): " + ", ".join(f"{k} {v}" for k, v in ML_ANCHORS.items()))
    if args.what in ("sessions", "all"):
        if root is None or not (root / "yoochoose_100k_sessionrec").exists():
            print("session data not found (pass --data)")
        else:
            print(sessions(root))
            print(f"for scale, {SESSION_ANCHORS}")
    if args.what in ("shop", "all"):
        print(shop(settings.lake()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
