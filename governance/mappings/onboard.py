"""`governance onboard FILE`: profile an unknown export and write a draft mapping for a person to check.

The draft is a valid mapping (it is loaded back before it is returned): column names and value
shapes (integers, decimals with their separator, epochs, dates with their pattern, free text,
null spellings) decide which contract column each export column most likely is, which source the
file feeds, and how keys the export lacks are derived. Every guess is marked ``# CHECK`` with the
evidence, because a profile can be wrong where a person knows the shop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from governance.collection import decode_landed
from governance.mappings import ReadSpec, _sniff, parse_mapping, read_export

SAMPLE = 5_000
NULL_SPELLINGS = ("NA", "N/A", "null", "NULL", "None", "-", "nan", "NaN", "\\N")
DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y%m%d",
                "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y")
#: name fragments → contract column, most specific first
NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("productname", "title"), ("itemname", "title"), ("productid", "item_id"), ("itemid", "item_id"),
    ("eventid", "event_id"), ("reviewid", "review_id"), ("queryid", "query_id"),
    ("session", "session_id"), ("visit", "session_id"),
    ("user", "user_id"), ("customer", "user_id"), ("visitor", "user_id"), ("client", "user_id"),
    ("clothing", "item_id"), ("item", "item_id"), ("product", "item_id"), ("sku", "item_id"), ("aid", "item_id"),
    ("article", "item_id"),
    ("eventtype", "event_type"), ("behavior", "event_type"), ("behaviour", "event_type"), ("action", "event_type"),
    ("type", "event_type"),
    ("timestamp", "event_time"), ("time", "event_time"), ("date", "event_time"), ("ts", "event_time"),
    ("price", "price"), ("amount", "price"), ("value", "price"), ("revenue", "price"), ("dollar", "price"),
    ("quantity", "quantity"), ("qty", "quantity"), ("number", "quantity"), ("count", "quantity"),
    ("currency", "currency"), ("device", "device"), ("platform", "device"),
    ("rating", "rating"), ("stars", "rating"), ("score", "rating"),
    ("reviewtext", "text"), ("review", "text"), ("body", "text"), ("comment", "text"),
    ("title", "title"), ("name", "title"), ("brand", "brand"), ("category", "category_path"),
    ("query", "query_text"), ("search", "query_text"),
)


@dataclass
class ColumnProfile:
    name: str
    shape: str  # int | decimal | epoch_s | epoch_ms | date | text | empty
    decimal: str = "."
    date_format: str | None = None
    null_share: float = 0.0
    distinct_share: float = 0.0
    mean_length: float = 0.0
    nulls: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


def _shape(values: pl.Series) -> tuple[str, str, str | None]:
    v = values.str.strip_chars()
    if v.len() == 0:
        return "empty", ".", None
    if v.str.contains(r"^-?\d+$").all():
        num = v.cast(pl.Float64, strict=False)
        if num.min() >= 1e8 and num.max() < 4e9 and v.str.len_chars().min() >= 9:
            return "epoch_s", ".", None
        if num.min() >= 1e11 and num.max() < 4e12:
            return "epoch_ms", ".", None
        for fmt in ("%Y%m%d",):
            if v.str.len_chars().min() == 8 and v.str.to_date(fmt, strict=False).is_not_null().all():
                return "date", ".", fmt
        return "int", ".", None
    if v.str.contains(r"^-?\d+\.\d+$").all():
        num = v.cast(pl.Float64, strict=False)
        if num.min() >= 1e8 and num.max() < 4e9:
            return "epoch_s", ".", None
        return "decimal", ".", None
    if v.str.contains(r"^-?[\d.]*\d,\d+$|^-?\d+$").all() and v.str.contains(",").any():
        return "decimal", ",", None
    if v.str.contains(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$").all():
        return "decimal", ".", None
    for fmt in DATE_FORMATS:
        if v.str.to_datetime(fmt, strict=False).is_not_null().mean() >= 0.98:
            return "date", ".", fmt
    if v.str.to_datetime(strict=False, time_zone="UTC").is_not_null().mean() >= 0.98:
        return "date", ".", "auto"
    return "text", ".", None


def profile(frame: pl.DataFrame) -> list[ColumnProfile]:
    out = []
    sample = frame.head(SAMPLE)
    for name in frame.columns:
        if name == "_row":
            continue
        col = sample[name].cast(pl.String)
        stripped = col.str.strip_chars()
        nulls = tuple(s for s in NULL_SPELLINGS if (stripped == s).any())
        present = col.filter(col.is_not_null() & (stripped != "") & ~stripped.is_in(list(nulls)))
        shape, dec, fmt = _shape(present)
        out.append(ColumnProfile(
            name, shape, dec, fmt, null_share=1 - present.len() / max(col.len(), 1),
            distinct_share=present.n_unique() / max(present.len(), 1),
            mean_length=float(present.str.len_chars().mean() or 0), nulls=nulls,
            examples=tuple(present.unique(maintain_order=True).head(3).to_list())))
    return out


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _guess(p: ColumnProfile) -> str | None:
    key = _key(p.name)
    if not key:
        return "review_id" if p.shape == "int" and p.distinct_share > 0.99 else None
    for fragment, target in NAME_HINTS:
        if fragment in key:
            if target == "event_time" and p.shape not in ("epoch_s", "epoch_ms", "date"):
                continue
            if target in ("price", "quantity") and p.shape not in ("int", "decimal"):
                continue
            if target == "quantity" and p.shape != "int":
                continue
            if target == "title" and p.shape != "text":
                continue
            return target
    if p.shape in ("epoch_s", "epoch_ms", "date"):
        return "event_time"
    return None


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def draft_mapping(path: str | Path, shop: str | None = None) -> str:
    """The text of a draft mapping for the export at ``path`` (validated before it is returned)."""
    path = Path(path)
    data = path.read_bytes()
    decoded = decode_landed(data)
    suffix = path.suffix.lower()
    fmt = "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "parquet" if suffix in (".parquet", ".pq") else "csv"
    text = decoded.text if fmt != "parquet" else ""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    delimiter = _sniff(text) if fmt == "csv" else ","
    if fmt == "csv" and lines and lines[0].count(delimiter) == 0 and re.search(r"\S\s+\S", lines[0]):
        fmt = "whitespace"
    header = True
    read = ReadSpec(format=fmt, delimiter=delimiter, header=True)
    frame, _ = read_export(data, read, path.name)
    if fmt in ("csv", "whitespace") and frame.width > 1:
        # a header names columns; a first row whose every field is a number is data, not names
        names = [c for c in frame.columns if c != "_row"]
        if sum(bool(re.fullmatch(r"-?[\d.,]+", n.strip())) for n in names) * 2 >= len(names):
            header = False
            read = ReadSpec(format=fmt, delimiter=delimiter, header=False,
                            columns=tuple(f"col{i + 1}" for i in range(len(names))))
            frame, _ = read_export(data, read, path.name)
    profiles = profile(frame)
    guesses: dict[str, ColumnProfile] = {}
    for p in profiles:
        target = _guess(p)
        if target and target not in guesses:
            guesses[target] = p
    has = set(guesses)
    if {"rating", "text"} & has and "rating" in has:
        source = "reviews"
    elif "item_id" in has and "event_time" in has:
        source = "events"
    elif "title" in has and "event_time" not in has:
        source = "products"
    else:
        source = "events"
    rename = {"events": {}, "reviews": {"item_id": "product_id", "event_time": "review_time"},
              "products": {"item_id": "product_id"}}[source]
    columns = {rename.get(t, t): p for t, p in guesses.items()}
    from governance.contracts import contract

    c = contract(source)
    columns = {t: p for t, p in columns.items() if t in c.column_names}
    shop = shop or re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_").lower() or "shop"
    nulls = sorted({n for p in profiles for n in p.nulls})
    out = [f"# Draft mapping for {path.name}, written by `governance onboard` from a profile of its first "
           f"{min(frame.height, SAMPLE)} rows.",
           "# Check every line marked CHECK, then land the export with:",
           f"#   governance import --mapping {shop}.toml {path.name}",
           f"# The file decoded as {decoded.encoding} ({decoded.method}).",
           "version = 1", f"shop = {_toml(shop)}", f"namespace = {_toml(shop)}",
           f"sends = [{_toml(source)}]  # CHECK: every source this shop sends (events, products, users, reviews, queries)",
           "", "[read]", f"format = {_toml(fmt)}"]
    if fmt == "csv":
        out.append(f"delimiter = {_toml(delimiter)}")
    out.append(f"header = {'true' if header else 'false'}")
    if not header:
        out.append("columns = [" + ", ".join(_toml(n) for n in read.columns) + "]  # CHECK: name the fields")
    if nulls:
        out.append("null_values = [" + ", ".join(_toml(n) for n in nulls) + "]")
    out += ["", f"[{source}]"]
    time_col = c.time_column
    for target, p in columns.items():
        opts = [f"from = {_toml(p.name)}"]
        if target.endswith("_id"):
            opts.append("id = true")
        if target == time_col or target in ("updated_at", "signup_at"):
            if p.shape in ("epoch_s", "epoch_ms"):
                opts.append(f"format = {_toml(p.shape)}")
            elif p.date_format:
                opts.append(f"format = {_toml(p.date_format)}")
        if target in ("price", "quantity") and p.decimal == ",":
            opts.append('decimal = ","')
        evidence = f"{p.shape}, {p.null_share:.0%} empty, e.g. {', '.join(map(str, p.examples))[:60]}"
        out.append(f"{target} = {{ {', '.join(opts)} }}  # CHECK ({evidence})")
    all_cols = [p.name for p in profiles]
    for req in c.required:
        if req in columns:
            continue
        if req == c.key[0]:
            out.append(f"{req} = {{ hash = [{', '.join(_toml(n) for n in all_cols)}], id = true }}  "
                       "# CHECK: the export has no id; a hash of the row's content (re-sent rows keep it)")
        elif req == "session_id" and "user_id" in columns and time_col in columns:
            out.append(f"session_id = {{ session = {_toml(columns['user_id'].name)}, time = "
                       f"{_toml(columns[time_col].name)}, gap_minutes = 30, id = true }}  # CHECK: derived sessions")
        elif req == "event_type":
            out.append('event_type = { const = "view" }  # CHECK: the export names no event type')
        else:
            out.append(f"{req} = {{ absent = true }}  # CHECK: no column found for {req}")
    unused = [p.name for p in profiles if p not in columns.values()]
    if unused:
        out.append(f"# not mapped (no contract column found): {', '.join(unused)}")
    text_out = "\n".join(out) + "\n"
    parse_mapping(text_out, f"draft for {path.name}")  # a draft is always a valid mapping
    return text_out
