"""Model-backed catalog findings on the generated shop, scored against the generator's ground truth.

The shop (governance.shop) injects miscategorised products (category path of another top category)
and duplicate listings under new ids at known rates and records them in
``<truth_root>/products.parquet``. Products go landing → collection → cleaning → integration, then
the MiniLM-backed findings are compared with that truth.
"""

from __future__ import annotations

import resource
import time
from datetime import UTC, datetime

import polars as pl
import pytest

pytestmark = pytest.mark.slow

from governance.integration.config import IntegrationConfig
from governance.integration.pipeline import build_catalog, build_catalog_findings, write_catalog
from governance.labelling.encoder import Embedder, catalog_embedder
from governance.storage import Lake


def precision_recall(flagged: set, truth: set) -> dict[str, float]:
    tp = len(flagged & truth)
    return {"flagged": len(flagged), "true": len(truth), "true_positives": tp,
            "precision": tp / len(flagged) if flagged else float("nan"),
            "recall": tp / len(truth) if truth else float("nan")}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@pytest.fixture(scope="module")
def shop_lake(tmp_path_factory):
    from governance.cleaning import clean_partition
    from governance.collection import ingest_partition
    from governance.contracts import CONTRACTS
    from governance.shop import ShopConfig, generate_shop, land_shop

    root = tmp_path_factory.mktemp("shop")
    landing, truth_root, lake = root / "landing", root / "truth", Lake.at(root / "lake")
    shop = generate_shop(ShopConfig(n_events=300_000, seed=7))  # ~2,000 products
    land_shop(shop, landing, truth_root)
    now = datetime.now(UTC)
    ingest_partition(lake, CONTRACTS["products"], landing, None, run_id="test", ingested_at=now)
    clean_partition(lake, "products", None, run_id="test", now=now)
    write_catalog(lake, build_catalog(lake))
    return lake, pl.read_parquet(truth_root / "products.parquet")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="module")
def encoder(model_cache):
    return catalog_embedder(model_cache)


@pytest.fixture(scope="module")
def first_run(shop_lake, encoder):
    lake, _ = shop_lake
    wall, cpu = time.perf_counter(), _cpu()
    result = build_catalog_findings(lake, IntegrationConfig(), encoder)
    return result, time.perf_counter() - wall, _cpu() - cpu


def test_miscategorised_products_precision_and_recall(shop_lake, first_run):
    lake, truth = shop_lake
    result, _, _ = first_run
    present = set(lake.read("integrated", "product_history")["product_id"])
    true_mis = set(truth.filter(pl.col("is_miscategorised"))["product_id"]) & present
    flagged = set(result.findings.filter(pl.col("kind") == "miscategorised")["product_id"])
    pr = precision_recall(flagged, true_mis)
    print(f"\nmiscategorised: {pr}")
    assert len(true_mis) >= 10
    assert pr["precision"] >= 0.90 and pr["recall"] >= 0.80
    # the evidence names the true top category
    true_top = dict(truth.select("product_id", "true_top_category").iter_rows())
    hits = result.findings.filter((pl.col("kind") == "miscategorised") & pl.col("product_id").is_in(list(true_mis)))
    right = sum(s.split(" > ")[0] == true_top[p] for p, s in hits.select("product_id", "suggested_category").iter_rows())
    assert right / max(1, hits.height) >= 0.9


def test_duplicate_products_precision_and_recall(shop_lake, first_run):
    lake, truth = shop_lake
    result, _, _ = first_run
    present = set(lake.read("integrated", "product_history")["product_id"])
    pairs = {frozenset(p) for p in truth.filter(pl.col("is_duplicate")).select("product_id", "duplicate_of").iter_rows()
             if set(p) <= present}  # near-identical titles were already merged by cleaning
    found = {frozenset(p) for p in result.findings.filter(pl.col("kind") == "duplicate")
             .select("product_id", "other_product_id").iter_rows()}
    pr = precision_recall(found, pairs)
    print(f"\nduplicates (pairs left after cleaning's exact-title merge): {pr}")
    assert pairs, "the shop should leave reworded duplicates for the encoder"
    assert pr["recall"] >= 0.6 and pr["precision"] >= 0.6


def test_embedding_is_fast_and_cached_by_content(shop_lake, first_run, encoder):
    lake, _ = shop_lake
    result, wall, cpu = first_run
    n = result.embedded.texts.height
    print(f"\nembedded {result.embedded.embedded} of {n} product texts in {result.embedded.seconds:.1f}s wall, "
          f"{cpu:.1f} CPU-s for the whole findings build (backend {encoder.backend})")
    assert result.embedded.embedded == n and n >= 1500
    assert cpu < 90, "embedding ~2k products should take well under a minute of two cores"
    again = build_catalog_findings(lake, IntegrationConfig(), encoder)
    assert again.embedded.embedded == 0 and again.embedded.cached == n
    assert again.findings.equals(result.findings)
    # a changed description is embedded again, nothing else
    clean = lake.read("clean", "products")
    pid = clean["product_id"][0]
    lake.write("clean", "products", clean.with_columns(
        pl.when(pl.col("product_id") == pid).then(pl.lit("A brand new description.")).otherwise(pl.col("description"))
        .alias("description")))
    third = build_catalog_findings(lake, IntegrationConfig(), encoder)
    assert third.embedded.embedded == 1
    lake.write("clean", "products", clean)


def test_findings_table_shape_and_suite(shop_lake, first_run):
    from governance.integration.checks import primary_key

    lake, _ = shop_lake
    findings = lake.read("integrated", "catalog_findings")
    assert primary_key(findings, "catalog_findings").passed
    assert set(findings["kind"]) <= {"miscategorised", "duplicate"}
    mis = findings.filter(pl.col("kind") == "miscategorised")
    assert (mis["assigned_category"] != mis["suggested_category"]).all()
    assert (mis["margin"] >= IntegrationConfig().miscategorised_margin).all()
    from governance.quality import suites, validation
    from governance.quality.runner import suites_dir

    expectations = suites_dir()
    for table in ("catalog_findings", "embedding_cache"):
        suite = suites.load_suite(expectations / f"integrated.{table}.json")
        frame = lake.read("integrated", table)
        failed = [r.check_name for r in validation.validate(suite, frame).results if not r.success]
        assert not failed, (table, failed)


def test_onnx_and_pytorch_backends_give_the_same_vectors(encoder, model_cache):
    import numpy as np

    # the ONNX export is cached where the caller said (Settings.model_cache), and reused from there
    assert encoder.backend == "onnx"
    exported = list(model_cache.glob("*.onnx"))
    assert len(exported) == 1
    again = Embedder(max_length=256, backend="onnx", onnx_dir=model_cache)
    assert list(model_cache.glob("*.onnx")) == exported
    texts = ["Acme Wireless Headphones, Over-Ear, Black. Meet the Acme headphones: long battery life.",
             "Kitchora Non-Stick Frying Pan 28cm", "A picture book for early readers", ""]
    torch_vectors = Embedder(max_length=256, bf16=False, backend="torch").encode(texts)
    vectors = encoder.encode(texts)
    assert np.array_equal(vectors, again.encode(texts))
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float((vectors * torch_vectors).sum(axis=1).min()) > 0.9999
