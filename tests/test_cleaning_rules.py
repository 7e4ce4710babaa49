"""Cleaning rules on tiny hand-made frames: each rule fires where it should and nowhere else."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from governance.cleaning import RuleError, clean_frame
from governance.cleaning.engine import Context, Rule, apply_rules
from governance.cleaning.blocks import fixes
from governance.collection import raw_schema
from governance.contracts import CONTRACTS

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
T0 = datetime(2026, 11, 10, 10, tzinfo=UTC)


def raw(source: str, rows: list[dict]) -> pl.DataFrame:
    schema = raw_schema(CONTRACTS[source])
    full = []
    for i, row in enumerate(rows, 1):
        base = {"_source_file": f"{source}/2026-11-10/f.csv", "_file_hash": "h", "_row_number": i,
                "_ingested_at": NOW, "_partition": "2026-11-10"}
        full.append({**base, **row})
    return pl.DataFrame(full, schema=schema)


def products() -> pl.DataFrame:
    cats = ["Home > Kitchen > Knives"] * 12 + ["Electronics > Audio > Earbuds"] * 12
    rows = [{"product_id": f"p{i}", "title": f"Item {i}", "brand": "Acme", "category_path": c, "price": 20.0 + i,
             "currency": "USD", "updated_at": T0} for i, c in enumerate(cats)]
    return raw("products", rows)


def ctx(source: str, **refs) -> Context:
    return Context(source=source, partition="2026-11-10", run_id="test", now=NOW, references=refs)


def event(i: int, **kw) -> dict:
    return {"event_id": f"e{i}", "session_id": f"s{i % 3}", "user_id": "u1", "item_id": "p1", "event_type": "view",
            "event_time": T0 + timedelta(minutes=i), **kw}


@pytest.fixture
def refs():
    prod = clean_frame("products", products(), ctx("products")).clean
    users = pl.DataFrame({"user_id": ["u1", "u2"]})
    return {"products": prod, "users": users, "product_ids": prod.select("product_id"), "user_ids": users,
            "product_id_map": pl.DataFrame({"duplicate_id": ["p99"], "canonical_id": ["p2"]})}


def rules_hit(result) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in result.quarantine.iter_rows(named=True):
        out.setdefault(r["rule"], set()).add(r["key"])
    return out


def test_events_rules_each_remove_their_fault_and_conserve_rows(refs):
    rows = [event(i) for i in range(1, 21)]
    rows += [
        event(1),  # exact duplicate of e1
        event(2, event_type="click"),  # e2 re-sent with a change: the first row of the delivery is kept
        event(30, event_type="teleport"),
        event(31, event_time=datetime(1970, 1, 1, tzinfo=UTC)),
        event(32, event_time=NOW + timedelta(days=30)),
        event(33, item_id="nope"),
        event(34, user_id="ghost"),
        event(35, event_type="purchase", price=-5.0, quantity=1),
        event(36, event_type="purchase", price=21000.0, quantity=1),
        event(37, event_type="purchase", price=21.0, quantity=0),
    ]
    bot = [event(100 + j, session_id="bot", event_time=T0 + timedelta(seconds=j * 0.5)) for j in range(40)]
    result = clean_frame("events", raw("events", rows + bot), ctx("events", **refs))
    hits = rules_hit(result)
    assert hits["exact_duplicate"] == {"e1"}
    assert hits["key_duplicate"] == {"e2"}
    assert result.clean.filter(pl.col("event_id") == "e2")["event_type"].to_list() == ["view"]
    assert hits["invalid_event_type"] == {"e30"}
    assert hits["timestamp_out_of_range"] == {"e31", "e32"}
    assert hits["unknown_item"] == {"e33"} and hits["unknown_user"] == {"e34"}
    assert hits["price_not_positive"] == {"e35"} and hits["price_outlier"] == {"e36"}
    assert hits["quantity_not_positive"] == {"e37"}
    assert len(hits["bot_session"]) == 40
    assert "40 views/clicks" in result.quarantine.filter(pl.col("rule") == "bot_session")["reason"][0]
    assert result.conserved and result.clean.height == 20
    assert result.clean["event_id"].n_unique() == 20


def test_events_fixes_are_audited_with_originals(refs):
    rows = [event(i) for i in range(1, 5)] + [
        event(10, event_type=" PV "),
        event(11, event_type="purchase", price=10.0, currency="EUR", quantity=None),
        event(12, event_type="purchase", price=None, quantity=2),
        event(13, item_id="p99"),
    ]
    result = clean_frame("events", raw("events", rows), ctx("events", **refs))
    audit = {(r["key"], r["rule"], r["column"]): (r["original"], r["fixed"]) for r in result.audit.iter_rows(named=True)}
    assert audit[("e10", "normalise_event_type", "event_type")] == (" PV ", "view")
    assert audit[("e11", "currency_to_usd", "price")] == ("10.0", "10.8")
    assert audit[("e11", "impute_quantity", "quantity")] == (None, "1")
    assert audit[("e12", "impute_price", "price")] == (None, "21.0")
    assert audit[("e13", "remap_duplicate_product", "item_id")] == ("p99", "p2")
    clean = result.clean.filter(pl.col("event_id") == "e11").row(0, named=True)
    assert clean["currency"] == "USD" and clean["price_usd_converted"] is True
    assert result.quarantine.is_empty()


def test_products_canonicalise_and_detect_near_duplicates():
    frame = products()
    extra = raw("products", [
        {"product_id": "p50", "title": "  ITEM 1!! ", "brand": "acme ", "category_path": "home>kitchen>knives",
         "price": 21.0, "updated_at": T0},
        {"product_id": "p51", "title": "Gizmo", "brand": "Acme", "category_path": "Home > Kitchen > Knives",
         "price": -3.0, "updated_at": T0},
    ]).with_columns(_row_number=pl.col("_row_number") + 100)
    result = clean_frame("products", pl.concat([frame, extra]), ctx("products"))
    assert rules_hit(result)["near_duplicate_product"] == {"p50"}
    assert "p1" in result.quarantine["reason"][0]
    gizmo = result.clean.filter(pl.col("product_id") == "p51").row(0, named=True)
    assert gizmo["price_imputed"] and gizmo["price"] > 0
    assert set(result.clean["category_l1"]) == {"Home", "Electronics"}


def test_reviews_mask_pii_flag_damage_and_drop_near_duplicates(refs):
    base = {"user_id": "u1", "product_id": "p1", "rating": 5, "review_time": T0}
    rows = [
        {**base, "review_id": "r1", "text": "Great knife, very sharp and well balanced in the hand"},
        {**base, "review_id": "r2", "text": "Great knife very sharp and well balanced in the hand!"},
        {**base, "review_id": "r3", "user_id": "u2", "text": "Mail me at jane.doe@example.com or 555-123-4567"},
        {**base, "review_id": "r4", "user_id": "u2", "product_id": "p3", "text": "Broken \ufffd\ufffd text"},
        {**base, "review_id": "r5", "user_id": "u2", "product_id": "p4", "rating": 7, "text": "ok"},
    ]
    result = clean_frame("reviews", raw("reviews", rows), ctx("reviews", **refs))
    hits = rules_hit(result)
    assert hits == {"near_duplicate_review": {"r2"}, "rating_out_of_range": {"r5"}}
    r3 = result.clean.filter(pl.col("review_id") == "r3").row(0, named=True)
    assert r3["text"] == "Mail me at [EMAIL] or [PHONE]" and r3["pii_spans_masked"] == 2
    assert result.clean.filter(pl.col("review_id") == "r4")["text_damaged"].to_list() == [True]


def test_a_rule_missing_its_column_is_a_named_error():
    rule = Rule("needs_colour", "fix", "", ("colour",), fixes(colour=pl.lit("red")))
    with pytest.raises(RuleError, match="'needs_colour' on events: column.s. colour missing"):
        apply_rules(raw("events", [event(1)]), (rule,), ctx("events"), key=("event_id",), record_columns=["event_id"])


def test_a_wholly_null_optional_column_does_not_break_cleaning(refs):
    rows = [event(i, price=None, quantity=None, device=None, currency=None) for i in range(1, 30)]
    result = clean_frame("events", raw("events", rows), ctx("events", **refs))
    assert result.conserved and result.clean.height == 29 and result.quarantine.is_empty()
    no_prices = products().with_columns(price=pl.lit(None, pl.Float64), brand=pl.lit(None, pl.String))
    result = clean_frame("products", no_prices, ctx("products"))
    assert result.conserved and result.clean.height == no_prices.height
    skipped = {o.rule: o.skipped for o in result.outcomes if o.skipped}
    assert "price_outlier" in skipped and "canonical_brand" in skipped
    assert result.clean["price_imputed"].all()


def test_a_checkout_is_not_a_bot_and_registry_less_users_are_not_orphans(refs):
    """Many purchases booked at one instant are one checkout; an imported system without user
    profiles (Instacart) has behaviour-only users."""
    order = [event(200 + j, session_id="order-1", event_type="purchase", price=21.0, quantity=1,
                   user_id="instacart:77", event_time=T0) for j in range(25)]
    result = clean_frame("events", raw("events", order), ctx("events", **refs))
    assert result.quarantine.is_empty() and result.clean.height == 25
