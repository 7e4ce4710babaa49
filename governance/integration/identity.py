"""Identity: every user id and product id of every source mapped to one integrated key.

Users
-----
* A *source system* is read off the id: importers namespace ids as ``"<kind>:<id>"``
  (``"instacart:42"``); ids without a namespace belong to the generated ``shop``.
* Systems with a user registry (rows in ``clean.users``) are authoritative for their ids: an event
  of such a system whose user is not in the registry is an orphan. Systems without a registry
  (behaviour exports such as Instacart) have *behaviour-only* users, known from their activity.
* Records of **different** systems with the same normalised e-mail are one person, provided the
  e-mail names exactly one id in each system (an ambiguous e-mail links nothing). Within one system
  the system's own key is trusted (two ids sharing an address stay two users).
* The identity's canonical record is its earliest ingested id (ties: smallest id), so later
  arrivals never change an existing key. ``user_key = "u_" + keyed BLAKE2b(canonical id)``: stable,
  carries no e-mail, phone or name, and cannot be reversed without the deployment's secret.
* Conflicting attributes of one identity are resolved by a stated rule and counted:
  ``country`` = the latest non-null value by ingest time (then ``updated_at``, file, row);
  ``signup_at`` = the earliest non-null value (a person signs up once: later values are re-sign-ups
  in another system).

Products
--------
Product ids are already unique across systems (namespaced), so the key is the id itself; cleaning's
near-duplicate remap (``clean.product_id_map``: duplicate id → kept id) is recorded in the mapping
so events that still carry a duplicate id resolve to the kept product. Several rows for one product
version (same id and version time) with different attributes are conflicts: the latest ingested
wins (then file, row number), and they are counted per attribute. Cross-id duplicates found by the
encoder are *findings for review*, never merged automatically (see ``findings``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import polars as pl

from governance.integration.config import DEFAULT_CONFIG, IntegrationConfig
from governance.integration.schemas import TS, conform_table

SHOP_SYSTEM = "shop"
_NAMESPACE = r"^([a-z][a-z0-9_]*):"


def source_system(expr: pl.Expr) -> pl.Expr:
    """The system an id belongs to: its ``kind:`` namespace, or ``shop`` when it has none."""
    return expr.str.extract(_NAMESPACE, 1).fill_null(SHOP_SYSTEM)


def pseudonymise(ids: pl.Series, secret: bytes) -> pl.Series:
    """``u_`` + 20 hex digits of a keyed BLAKE2b hash of each id (nulls stay null)."""
    uniq = ids.drop_nulls().unique()
    keys = ["u_" + hashlib.blake2b(v.encode(), key=secret[:64], digest_size=10).hexdigest() for v in uniq.to_list()]
    lookup = pl.DataFrame({"__id": uniq, "__key": pl.Series(keys, dtype=pl.String)})
    return (ids.to_frame("__id").join(lookup, on="__id", how="left", maintain_order="left")["__key"]
            .alias(ids.name))


def _email_key(expr: pl.Expr) -> pl.Expr:
    e = expr.str.strip_chars().str.to_lowercase()
    return pl.when(e.str.contains("@")).then(e)


@dataclass
class UserIdentity:
    """The registry side of user identity: mapping, resolved attributes and conflict counts."""

    #: conform_table("user_keys") rows for every registry id (behaviour ids are added by ``with_behaviour``)
    mapping: pl.DataFrame
    #: user_key, signup_at, country, updated_at, source_systems, source_ids for registry identities
    attributes: pl.DataFrame
    #: identities whose records disagree, per attribute
    conflicts: dict[str, int] = field(default_factory=dict)
    #: source ids merged into another id's identity by e-mail
    merged_by_email: int = 0

    @property
    def registry_systems(self) -> list[str]:
        return sorted(self.mapping.filter(pl.col("origin") == "registry")["source_system"].unique().to_list())


def resolve_users(users: pl.DataFrame, config: IntegrationConfig = DEFAULT_CONFIG) -> UserIdentity:
    """Resolve ``clean.users`` rows (any number per id, from any system) into identities."""
    if users.is_empty():
        return UserIdentity(conform_table("user_keys", pl.DataFrame()),
                            pl.DataFrame(schema={"user_key": pl.String, "signup_at": TS, "country": pl.String,
                                                 "updated_at": TS, "source_systems": pl.String,
                                                 "source_ids": pl.Int64}))
    rows = users.filter(pl.col("user_id").is_not_null()).with_columns(
        source_system(pl.col("user_id")).alias("source_system"),
        _email_key(pl.col("email")).alias("__email"),
    )
    ids = rows.group_by("user_id").agg(
        pl.col("source_system").first(),
        pl.len().alias("records"),
        pl.col("_ingested_at").min().alias("first_ingested_at"),
        pl.col("_ingested_at").max().alias("last_ingested_at"),
    )
    # the order that decides an identity's canonical record: earliest ingested, then smallest id
    ids = ids.with_columns(
        pl.concat_str([pl.col("first_ingested_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f").fill_null("~"),
                       pl.col("user_id")], separator="|").alias("__rank"))
    ids = ids.with_columns(pl.col("__rank").alias("__label"))

    merged = 0
    if config.merge_users_by_email:
        pairs = rows.select("user_id", "source_system", "__email").drop_nulls("__email").unique()
        # an e-mail links ids only when it names exactly one id per system, in at least two systems
        per_email = pairs.group_by("__email").agg(
            pl.col("user_id").n_unique().alias("__ids"), pl.col("source_system").n_unique().alias("__systems"))
        linking = per_email.filter((pl.col("__ids") == pl.col("__systems")) & (pl.col("__systems") > 1))
        edges = pairs.join(linking.select("__email"), on="__email", how="semi").select("user_id", "__email")
        if edges.height:
            # label propagation to the smallest rank over the id–e-mail graph (connected components)
            for _ in range(32):
                lab = edges.join(ids.select("user_id", "__label"), on="user_id")
                by_email = lab.group_by("__email").agg(pl.col("__label").min().alias("__e"))
                by_id = lab.join(by_email, on="__email").group_by("user_id").agg(pl.col("__e").min().alias("__new"))
                updated = ids.join(by_id, on="user_id", how="left").with_columns(
                    pl.min_horizontal("__label", "__new").alias("__next"))
                changed = updated.filter(pl.col("__next") != pl.col("__label")).height
                ids = updated.drop("__label", "__new").rename({"__next": "__label"})
                if not changed:
                    break
    ids = ids.with_columns(pl.col("__label").str.split("|").list.slice(1).list.join("|").alias("canonical_id"))
    ids = ids.with_columns(
        pseudonymise(ids["canonical_id"], config.secret).alias("user_key"),
        (pl.col("user_id") == pl.col("canonical_id")).alias("is_canonical"),
    )
    merged = ids.filter(~pl.col("is_canonical")).height
    mapping = conform_table("user_keys", ids.with_columns(
        pl.col("user_id").alias("source_user_id"),
        pl.lit("registry").alias("origin"),
        pl.when(pl.col("is_canonical")).then(pl.lit("id")).otherwise(pl.lit("email")).alias("matched_by"),
    )).sort("source_user_id")

    # attributes per identity, by the stated rules
    keyed = rows.join(ids.select("user_id", "user_key"), on="user_id")
    latest_first = keyed.sort(["_ingested_at", "updated_at", "_source_file", "_row_number"],
                              descending=True, nulls_last=True)
    attributes = latest_first.group_by("user_key").agg(
        pl.col("signup_at").min().alias("signup_at"),
        pl.col("country").drop_nulls().first().alias("country"),
        pl.col("updated_at").max().alias("updated_at"),
        pl.col("source_system").unique().sort().str.join(",").alias("source_systems"),
        pl.col("user_id").n_unique().alias("source_ids"),
        pl.col("country").drop_nulls().n_unique().alias("__countries"),
        pl.col("signup_at").drop_nulls().n_unique().alias("__signups"),
    ).sort("user_key")
    conflicts = {
        "country": int((attributes["__countries"] > 1).sum()),
        "signup_at": int((attributes["__signups"] > 1).sum()),
    }
    return UserIdentity(mapping=mapping, attributes=attributes.drop("__countries", "__signups"),
                        conflicts=conflicts, merged_by_email=merged)


def behaviour_mapping(user_ids: pl.Series, registry_systems: list[str],
                      config: IntegrationConfig = DEFAULT_CONFIG) -> pl.DataFrame:
    """Mapping rows for ids of systems without a registry (their key is a function of the id)."""
    ids = user_ids.drop_nulls().unique().to_frame("source_user_id").with_columns(
        source_system(pl.col("source_user_id")).alias("source_system"))
    ids = ids.filter(~pl.col("source_system").is_in(registry_systems)).sort("source_user_id")
    return conform_table("user_keys", ids.with_columns(
        pseudonymise(ids["source_user_id"], config.secret).alias("user_key"),
        pl.lit("behaviour").alias("origin"),
        pl.lit("id").alias("matched_by"),
        pl.lit(True).alias("is_canonical"),
        pl.lit(0, pl.Int64).alias("records"),
    ))


@dataclass
class UserLookup:
    """What the daily builders need to turn a source user id into a user_key."""

    mapping: pl.DataFrame  # source_user_id, user_key (registry and recorded behaviour ids)
    registry_systems: list[str]
    secret: bytes

    @classmethod
    def from_mapping(cls, user_keys: pl.DataFrame, config: IntegrationConfig = DEFAULT_CONFIG) -> UserLookup:
        registry = sorted(user_keys.filter(pl.col("origin") == "registry")["source_system"].unique().to_list())
        return cls(user_keys.select("source_user_id", "user_key"), registry, config.secret)

    def lookup_frame(self, user_ids: pl.Series | None) -> pl.DataFrame:
        """``user_id`` → ``user_key`` for the given ids' universe: the recorded mapping plus keys of
        behaviour-only ids (systems without a registry) among ``user_ids`` not recorded yet."""
        mapping = self.mapping.rename({"source_user_id": "user_id"})
        if user_ids is None:
            return mapping
        ids = user_ids.drop_nulls().unique().to_frame("user_id")
        extra = (ids.join(mapping, on="user_id", how="anti")
                 .filter(~source_system(pl.col("user_id")).is_in(self.registry_systems)))
        if extra.is_empty():
            return mapping
        extra = extra.with_columns(pseudonymise(extra["user_id"], self.secret).alias("user_key"))
        return pl.concat([mapping, extra])

    def resolve(self, frame: pl.DataFrame, column: str = "user_id") -> pl.DataFrame:
        """Add ``user_key`` (null when anonymous or unknown) and ``__user_known`` to ``frame``.

        Registry systems: the id must be in the registry. Other systems: every id is a
        behaviour-only user whose key is computed on the fly (recorded in user_keys on its refresh).
        """
        out = frame.join(self.mapping.rename({"source_user_id": column}), on=column, how="left",
                         maintain_order="left")
        missing = out.filter(pl.col(column).is_not_null() & pl.col("user_key").is_null())
        if missing.height:
            sys = source_system(pl.col(column))
            behaviour = missing.select(column).unique().filter(~sys.is_in(self.registry_systems))
            if behaviour.height:
                extra = behaviour.with_columns(pseudonymise(behaviour[column], self.secret).alias("__bkey"))
                out = out.join(extra, on=column, how="left", maintain_order="left").with_columns(
                    pl.coalesce("user_key", "__bkey").alias("user_key")).drop("__bkey")
        return out.with_columns((pl.col(column).is_null() | pl.col("user_key").is_not_null()).alias("__user_known"))


# ---------------------------------------------------------------------------------------------
# products


def product_mapping(versions: pl.DataFrame, id_map: pl.DataFrame | None) -> pl.DataFrame:
    """user_keys' sibling for products: every id in clean.products, plus cleaning's duplicate ids."""
    ids = versions.group_by("product_id").agg(
        pl.len().alias("records"),
        pl.col("conflicting").sum().cast(pl.Int64).alias("conflicting_versions"),
        pl.col("_ingested_at").min().alias("first_ingested_at"),
        pl.col("_ingested_at").max().alias("last_ingested_at"),
    ).with_columns(
        pl.col("product_id").alias("source_product_id"),
        pl.col("product_id").alias("product_key"),
        pl.lit("id").alias("matched_by"),
    )
    frames = [ids]
    if id_map is not None and id_map.height:
        dupes = id_map.select(
            pl.col("duplicate_id").alias("source_product_id"),
            pl.col("canonical_id").alias("product_key"),
            pl.lit("duplicate_map").alias("matched_by"),
            pl.lit(0, pl.Int64).alias("records"),
            pl.lit(0, pl.Int64).alias("conflicting_versions"),
        ).filter(pl.col("product_key").is_in(ids["product_key"].implode())
                 & ~pl.col("source_product_id").is_in(ids["source_product_id"].implode()))
        frames.append(dupes)
    out = pl.concat(frames, how="diagonal_relaxed")
    out = out.with_columns(source_system(pl.col("source_product_id")).alias("source_system"))
    return conform_table("product_keys", out).sort("source_product_id")
