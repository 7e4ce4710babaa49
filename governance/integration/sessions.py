"""Sessions and query → product attribution, one day at a time.

Session ownership
-----------------
A session belongs to the day of its first admitted event or query, and its row holds *all* its
events and queries from that day and the next. Partition ``D`` therefore reads day ``D-1`` (only to
know which sessions started earlier: those belong to ``D-1``), ``D`` and ``D+1``. Events of a session
more than one calendar day after its start day cannot be attached without reading unboundedly far;
they are counted as ``events_beyond_window`` (reported, never silently lost) — a session that long
is far past ``max_session_hours`` and is flagged by the impossible-duration check anyway.

Query clicks
------------
Each admitted event of a session is attributed to the latest query of that session at or before it
(an as-of join); a later query takes over. ``query_clicks`` has one row per query × product with
views, clicks, add-to-carts and purchases after that query; only products with at least one click,
add-to-cart or purchase get a row (views alone are browsing, not an answer to the query).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from governance.integration.config import COUNT_COLUMNS
from governance.integration.events import DAY_ENGINE
from governance.integration.identity import UserLookup
from governance.integration.schemas import conform_table

QUERY_COLUMNS = ["query_id", "session_id", "user_id", "query_text", "query_time"]

_PURCHASE = pl.col("event_type") == "purchase"


def prepare_queries(queries: pl.DataFrame | None, users: UserLookup) -> pl.DataFrame:
    """clean.queries rows → query_id, session_id, user_key (null when anonymous/unknown), text, time."""
    schema = {"query_id": pl.String, "session_id": pl.String, "user_id": pl.String, "query_text": pl.String,
              "query_time": pl.Datetime("us", "UTC")}
    if queries is None:
        queries = pl.DataFrame(schema=schema)
    q = queries.select([pl.col(c) if c in queries.columns else pl.lit(None, schema[c]).alias(c) for c in schema])
    q = q.filter(pl.col("query_id").is_not_null() & pl.col("session_id").is_not_null()
                 & pl.col("query_time").is_not_null()).unique("query_id", keep="first", maintain_order=True)
    q = users.resolve(q, "user_id")
    return q.select("query_id", "session_id", "user_key", "query_text", "query_time")


@dataclass
class SessionsResult:
    sessions: pl.DataFrame
    #: admitted events counted in the day's sessions (from day D and D+1)
    events_counted: int
    #: admitted events of day D+1 whose session started before day D (see module docstring)
    events_beyond_window: int
    #: admitted events of day D that belong to a session owned by D-1 (counted in that partition)
    events_in_earlier_sessions: int


def build_sessions(day: str, admitted: pl.DataFrame, queries: pl.DataFrame, *,
                   earlier_session_ids: pl.Series | None = None,
                   next_admitted: pl.DataFrame | None = None, next_queries: pl.DataFrame | None = None
                   ) -> SessionsResult:
    """Sessions owned by ``day``: ``admitted``/``queries`` are that day's, ``earlier_session_ids`` the
    sessions seen the day before, ``next_*`` the day after (all optional at the table's edges)."""
    d = date.fromisoformat(day)
    earlier = (earlier_session_ids if earlier_session_ids is not None
               else pl.Series("session_id", [], pl.String)).unique().implode()
    # the day's sessions are owned unless seen the day before: one membership test per day's rows
    admitted = admitted.with_columns(pl.col("session_id").is_in(earlier).alias("__earlier"))
    in_earlier = int(admitted["__earlier"].sum())
    ev = admitted.filter(~pl.col("__earlier")).drop("__earlier")
    q = queries.filter(~pl.col("session_id").is_in(earlier))
    owned = pl.concat([ev.select("session_id"), q.select("session_id")]).unique()
    owned_ids = owned["session_id"].implode()
    beyond = 0
    if next_admitted is not None:
        ev = pl.concat([ev, next_admitted.filter(pl.col("session_id").is_in(owned_ids))], how="vertical_relaxed")
        beyond = next_admitted.filter(pl.col("session_id").is_in(earlier)).height
    if next_queries is not None:
        q = pl.concat([q, next_queries.filter(pl.col("session_id").is_in(owned_ids))], how="vertical_relaxed")

    per_event = ev.lazy().select(
        "session_id", "event_time", "device", "user_key", pl.col("product_id").hash().alias("__product"),
        *[(pl.col("event_type") == t).cast(pl.UInt32).alias(c) for t, c in COUNT_COLUMNS.items()],
        pl.when(_PURCHASE).then(pl.col("quantity").fill_null(1)).otherwise(0).alias("__units"),
        pl.when(_PURCHASE).then(pl.col("price") * pl.col("quantity").fill_null(1)).alias("__revenue"),
    ).group_by("session_id").agg(
        pl.len().cast(pl.Int64).alias("events"),
        *[pl.col(c).sum().cast(pl.Int64) for c in COUNT_COLUMNS.values()],
        pl.col("__units").sum().cast(pl.Int64).alias("units"),
        pl.col("__revenue").sum().alias("revenue"),
        # distinct products through a 64-bit hash of the id: far cheaper than comparing strings, and a
        # collision among a session's handful of products has probability ~1e-18
        pl.col("__product").n_unique().cast(pl.Int64).alias("products"),
        pl.col("event_time").min().alias("__ev_start"),
        pl.col("event_time").max().alias("__ev_end"),
        # the session's user; several users in one session are flagged and the smallest key is kept
        pl.col("user_key").min().alias("__ev_user"),
        pl.col("user_key").n_unique().alias("__ev_keys"),
        pl.col("user_key").null_count().alias("__ev_nulls"),
        pl.col("device").first().alias("device"),  # of the session's first landed event
    ).with_columns(
        (pl.col("__ev_keys") - (pl.col("__ev_nulls") > 0).cast(pl.UInt32)).alias("__ev_users"),
    ).collect(engine=DAY_ENGINE)
    per_query = q.lazy().group_by("session_id").agg(
        pl.len().cast(pl.Int64).alias("queries"),
        pl.col("query_time").min().alias("__q_start"),
        pl.col("query_time").max().alias("__q_end"),
        pl.col("user_key").min().alias("__q_user"),
    ).collect(engine=DAY_ENGINE)
    s = owned.join(per_event, on="session_id", how="left").join(per_query, on="session_id", how="left")
    zero = ["events", *COUNT_COLUMNS.values(), "units", "products", "queries"]
    s = s.with_columns(
        pl.col(zero).fill_null(0),
        pl.min_horizontal("__ev_start", "__q_start").alias("session_start"),
        pl.max_horizontal("__ev_end", "__q_end").alias("session_end"),
        pl.coalesce("__ev_user", "__q_user").alias("user_key"),
        (pl.col("__ev_users").fill_null(0) > 1).alias("user_conflict"),
        pl.lit(d).alias("date"),
    ).with_columns(
        pl.col("user_key").is_null().alias("is_anonymous"),
        ((pl.col("session_end") - pl.col("session_start")).dt.total_microseconds() / 1e6).alias("duration_s"),
        (pl.col("purchases") > 0).alias("converted"),
        (pl.col("session_end").dt.date() > pl.col("session_start").dt.date()).alias("spans_days"),
    )
    sessions = conform_table("sessions", s)
    return SessionsResult(sessions=sessions, events_counted=int(sessions["events"].sum()),
                          events_beyond_window=beyond, events_in_earlier_sessions=in_earlier)


@dataclass
class QueryClicksResult:
    query_clicks: pl.DataFrame
    queries: int
    queries_with_action: int
    #: admitted events (D and D+1) attributed to one of the day's queries
    events_attributed: int


def build_query_clicks(day: str, queries: pl.DataFrame, admitted: pl.DataFrame, *,
                       next_queries: pl.DataFrame | None = None,
                       next_admitted: pl.DataFrame | None = None) -> QueryClicksResult:
    """Products clicked / carted / bought after each of the day's queries, in the same session."""
    d = date.fromisoformat(day)
    sessions = queries["session_id"].unique().implode()
    q = queries.with_columns(pl.lit(True).alias("__own"))
    if next_queries is not None:
        q = pl.concat([q, next_queries.filter(pl.col("session_id").is_in(sessions))
                      .with_columns(pl.lit(False).alias("__own"))], how="vertical_relaxed")
    ev = admitted.filter(pl.col("session_id").is_in(sessions))
    if next_admitted is not None:
        ev = pl.concat([ev, next_admitted.filter(pl.col("session_id").is_in(sessions))], how="vertical_relaxed")
    ev = ev.select("session_id", "product_id", "event_type", "event_time", pl.col("user_key").alias("__ev_user"))
    matched = (ev.sort("event_time")
               .join_asof(q.select("session_id", "query_id", "query_time", "__own").sort("query_time"),
                          left_on="event_time", right_on="query_time", by="session_id", strategy="backward",
                          check_sortedness=False)
               .filter(pl.col("__own").fill_null(False)))
    action = pl.col("event_type") != "view"
    pairs = matched.group_by("query_id", "product_id").agg(
        *[(pl.col("event_type") == t).sum().cast(pl.Int64).alias(c) for t, c in COUNT_COLUMNS.items()],
        pl.col("event_time").filter(action).min().alias("first_action_at"),
        pl.col("__ev_user").drop_nulls().first().alias("__ev_user"),
    ).filter(pl.col("first_action_at").is_not_null())
    session_user = (ev.filter(pl.col("__ev_user").is_not_null()).sort("event_time")
                    .group_by("session_id").agg(pl.col("__ev_user").first().alias("__s_user")))
    out = (pairs.join(queries.select("query_id", "session_id", "user_key", "query_text", "query_time"),
                      on="query_id", how="left")
           .join(session_user, on="session_id", how="left")
           .with_columns(pl.coalesce("user_key", "__s_user").alias("user_key"),
                         pl.lit(d).alias("date"),
                         ((pl.col("first_action_at") - pl.col("query_time")).dt.total_microseconds() / 1e6)
                         .alias("seconds_to_first_action")))
    out = conform_table("query_clicks", out).sort("query_id", "product_id")
    return QueryClicksResult(query_clicks=out, queries=queries.height,
                             queries_with_action=out["query_id"].n_unique(), events_attributed=matched.height)
