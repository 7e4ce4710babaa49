"""Every source's schema contract, declared in one place.

A contract names the columns a landed file must provide, their logical types, whether they are
required, the aliases under which a column may arrive (schema drift), and the business key. The
collection stage enforces it; every later stage relies on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

#: Logical types a contract may declare, and the Polars type each lands as in the raw layer.
LOGICAL_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
}

#: Lineage columns the collection stage adds to every raw row.
LINEAGE_COLUMNS: dict[str, pl.DataType] = {
    "_source_file": pl.String(),
    "_file_hash": pl.String(),
    "_row_number": pl.Int64(),
    "_ingested_at": pl.Datetime("us", "UTC"),
    "_partition": pl.String(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: personal data: masked in every preview, sample, log line and metadata value (governance/privacy.py)
    pii: bool = False

    def __post_init__(self) -> None:
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"column {self.name!r}: unknown type {self.type!r}; use one of {sorted(LOGICAL_TYPES)}")

    @property
    def dtype(self) -> pl.DataType:
        return LOGICAL_TYPES[self.type]


@dataclass(frozen=True)
class SourceContract:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    #: column whose UTC day decides the daily partition; None for snapshot sources
    time_column: str | None = None
    owners: tuple[str, ...] = field(default=("team:data-platform",))

    @property
    def partitioned(self) -> bool:
        return self.time_column is not None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}: no column {name!r} in the contract")

    @property
    def pii(self) -> list[str]:
        """The columns holding personal data."""
        return [c.name for c in self.columns if c.pii]

    def alias_map(self) -> dict[str, str]:
        """Every accepted spelling (lower-cased) → the contract's column name."""
        mapping = {c.name.lower(): c.name for c in self.columns}
        for c in self.columns:
            for alias in c.aliases:
                mapping[alias.lower()] = c.name
        return mapping

    def raw_schema(self) -> dict[str, pl.DataType]:
        """The schema of the raw table: contract columns, then lineage."""
        return {**{c.name: c.dtype for c in self.columns}, **LINEAGE_COLUMNS}


EVENTS = SourceContract(
    name="events",
    description="Behaviour events from the storefront: view, click, add_to_cart, purchase.",
    columns=(
        Column("event_id", "string", aliases=("id", "eventid"), description="unique id of the event"),
        Column("session_id", "string", aliases=("session", "sessionid"), description="browsing session"),
        Column("user_id", "string", required=False, aliases=("user", "userid", "visitor_id"),
               description="logged-in user; null for anonymous sessions"),
        Column("item_id", "string", aliases=("product_id", "aid", "itemid"), description="product the event is about"),
        Column("event_type", "string", aliases=("type", "behavior_type", "event"),
               description="view | click | add_to_cart | purchase"),
        Column("event_time", "timestamp", aliases=("ts", "timestamp", "time", "event_ts"), description="when, UTC"),
        Column("price", "float", required=False, aliases=("unit_price", "amount"),
               description="unit price paid (purchase, add_to_cart)"),
        Column("quantity", "int", required=False, aliases=("qty",), description="units (purchase, add_to_cart)"),
        Column("currency", "string", required=False, description="ISO 4217 code of price"),
        Column("device", "string", required=False, aliases=("platform",), description="web | ios | android"),
    ),
    key=("event_id",),
    time_column="event_time",
)

PRODUCTS = SourceContract(
    name="products",
    description="The product catalog: one row per product version landed.",
    columns=(
        Column("product_id", "string", aliases=("item_id", "id", "sku"), description="catalog key"),
        Column("title", "string", aliases=("name", "product_name"), description="display title"),
        Column("description", "string", required=False, description="long text"),
        Column("brand", "string", required=False, aliases=("brand_name", "manufacturer")),
        Column("category_path", "string", aliases=("category", "categories"),
               description="category tree path, levels separated by ' > '"),
        Column("price", "float", required=False, aliases=("list_price", "unit_price")),
        Column("currency", "string", required=False, description="ISO 4217 code of price"),
        Column("updated_at", "timestamp", required=False, aliases=("modified_at", "last_modified"),
               description="when the catalog row was last changed"),
    ),
    key=("product_id",),
)

USERS = SourceContract(
    name="users",
    description="Registered users with contact details (PII: email, phone, name).",
    columns=(
        Column("user_id", "string", aliases=("id", "customer_id", "userid")),
        Column("email", "string", required=False, description="PII", pii=True),
        Column("phone", "string", required=False, description="PII", pii=True),
        Column("name", "string", required=False, aliases=("full_name",), description="PII", pii=True),
        Column("country", "string", required=False, aliases=("country_code",), description="ISO 3166 alpha-2"),
        Column("signup_at", "timestamp", aliases=("signup_date", "created_at", "registered_at")),
        Column("updated_at", "timestamp", required=False),
    ),
    key=("user_id",),
)

REVIEWS = SourceContract(
    name="reviews",
    description="Product reviews: star rating and free text.",
    columns=(
        Column("review_id", "string", aliases=("id",)),
        Column("user_id", "string", required=False, aliases=("customer_id", "author_id")),
        Column("product_id", "string", aliases=("item_id", "clothing_id")),
        Column("rating", "int", aliases=("stars", "score")),
        Column("title", "string", required=False, aliases=("summary", "headline")),
        Column("text", "string", required=False, aliases=("review_text", "body", "review")),
        Column("review_time", "timestamp", aliases=("created_at", "ts", "timestamp")),
    ),
    key=("review_id",),
    time_column="review_time",
)

QUERIES = SourceContract(
    name="queries",
    description="Site-search queries typed by shoppers.",
    columns=(
        Column("query_id", "string", aliases=("id",)),
        Column("session_id", "string", aliases=("session",)),
        Column("user_id", "string", required=False),
        Column("query_text", "string", aliases=("query", "q", "search_term")),
        Column("query_time", "timestamp", aliases=("ts", "timestamp", "time")),
        Column("results_count", "int", required=False, aliases=("n_results",)),
    ),
    key=("query_id",),
    time_column="query_time",
)

CONTRACTS: dict[str, SourceContract] = {c.name: c for c in (EVENTS, PRODUCTS, USERS, REVIEWS, QUERIES)}


def contract(source: str) -> SourceContract:
    try:
        return CONTRACTS[source]
    except KeyError:
        raise KeyError(f"unknown source {source!r}; known sources: {sorted(CONTRACTS)}") from None
