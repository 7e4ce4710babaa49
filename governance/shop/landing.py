"""Which landed file each row goes to, and writing the files byte-for-byte deterministically.

Layout: `<landing_root>/<source>/<YYYY-MM-DD>/<name>.<ext>`. Events rotate CSV → JSON Lines →
Parquet across days (odd days split into a morning and an afternoon file); reviews are CSV,
queries JSON Lines, users a JSONL snapshot on the first day then daily deltas, products a Parquet
snapshot then repricing/new-product deltas. Timestamp text formats vary by file as a real
landing zone's would; each file uses one format for all its rows (faulty cells aside).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from governance.contracts import CONTRACTS
from governance.shop.config import ShopConfig
from governance.shop.faults import BROKEN_UTF8
from governance.shop.util import DAY_US, US, epoch_us

EVENT_FORMATS = ("csv", "jsonl", "parquet")
#: timestamp text per file format: "native" is a Parquet timestamp column
EVENT_TS = {"csv": "iso_z", "jsonl": "iso_offset", "parquet": "native"}
STRFTIME = {"iso_z": "%Y-%m-%dT%H:%M:%S%.fZ", "iso_offset": "%Y-%m-%dT%H:%M:%S%.f+00:00", "space": "%Y-%m-%d %H:%M:%S"}

SCHEMA_DRIFT_RENAME = {"event_time": "ts"}
SCHEMA_DRIFT_EXTRA = "campaign_id"


@dataclass
class FilePlan:
    """The landed files, in a stable order; rows refer to them by file_id."""

    config: ShopConfig
    rows: list[dict] = field(default_factory=list)
    schema_drift_file: int | None = None

    def add(self, source: str, day: int, name: str, fmt: str, ts_format: str, typed: bool = False) -> int:
        """`typed`: a Parquet file whose columns keep their native types (no text-valued faults in it)."""
        date = self.config.start_date + dt.timedelta(days=day)
        path = f"{source}/{date.isoformat()}/{name}.{fmt}"
        self.rows.append(
            {
                "file_id": len(self.rows),
                "source": source,
                "file": path,
                "format": fmt,
                "ts_format": ts_format,
                "typed": typed,
                "day": day,
                "date": date,
            }
        )
        return len(self.rows) - 1

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            self.rows,
            schema={
                "file_id": pl.Int32,
                "source": pl.String,
                "file": pl.String,
                "format": pl.String,
                "ts_format": pl.String,
                "typed": pl.Boolean,
                "day": pl.Int32,
                "date": pl.Date,
            },
        )

    def formats_of(self, file_ids: np.ndarray) -> np.ndarray:
        fmts = np.array([r["format"] for r in self.rows])
        return fmts[file_ids]

    def text_ok(self, file_ids: np.ndarray) -> np.ndarray:
        """Rows whose file may carry text in a numeric or timestamp column."""
        return ~np.array([r["typed"] for r in self.rows])[file_ids]

    # -- per source ---------------------------------------------------------------------------
    def day_of(self, t_us: np.ndarray) -> np.ndarray:
        ws = epoch_us(self.config.window_start)
        return np.clip((t_us - ws) // DAY_US, 0, self.config.days - 1)

    def plan_events(self) -> np.ndarray:
        """(days, 2) lookup of events file ids by day and half-day."""
        lut = np.zeros((self.config.days, 2), dtype=np.int32)
        for d in range(self.config.days):
            fmt = EVENT_FORMATS[d % 3]
            # every other Parquet day is a legacy all-text export: only those may hold "$12.50" or "n/a"
            typed = fmt == "parquet" and d % 6 != 5
            lut[d, 0] = self.add("events", d, "events-00", fmt, EVENT_TS[fmt], typed)
            lut[d, 1] = self.add("events", d, "events-01", fmt, EVENT_TS[fmt], typed) if d % 2 == 1 else lut[d, 0]
        if self.config.schema_drift:
            self.schema_drift_file = int(lut[self.config.days // 2, 0])
        return lut

    def events_file(self, lut: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        day = self.day_of(t_us)
        ws = epoch_us(self.config.window_start)
        afternoon = ((t_us - ws) % DAY_US) >= 12 * 3600 * US
        return lut[day, afternoon.astype(np.int64)]

    def plan_daily(self, source: str, name: str, fmt: str, ts_for_day) -> np.ndarray:
        return np.array(
            [self.add(source, d, name, fmt, ts_for_day(d)) for d in range(self.config.days)], dtype=np.int32
        )

    def plan_versions(
        self, source: str, fmt: str, snapshot_ts: str, delta_ts: str, days_with_rows: np.ndarray
    ) -> np.ndarray:
        """A snapshot on the first day (typed, if Parquet), deltas on the days that have rows."""
        lut = np.full(self.config.days, -1, dtype=np.int32)
        for d in np.unique(days_with_rows).tolist():
            lut[d] = (
                self.add(source, d, f"{source}-snapshot", fmt, snapshot_ts, typed=fmt == "parquet")
                if d == 0
                else self.add(source, d, f"{source}-delta", fmt, delta_ts)
            )
        return lut


# ------------------------------------------------------------------------------------------------
# serialisation


def _json_str(e: pl.Expr) -> pl.Expr:
    """A JSON string literal (or null) for a String expression."""
    return pl.struct(e.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")


def _time_text(e: pl.Expr, ts_format: str) -> pl.Expr:
    if ts_format == "epoch":
        return e.dt.epoch("s").cast(pl.String)
    return e.dt.strftime(STRFTIME[ts_format])


def _num_text(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String)


def _frame_with_raw(df: pl.DataFrame, over: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    """Attach `<col>__raw` columns for the overrides of these rows."""
    cols = set()
    if over.height:
        for col in sorted(over["column"].unique().to_list()):
            part = over.filter(pl.col("column") == col).select("_rid", pl.col("raw").alias(f"{col}__raw"))
            df = df.join(part, on="_rid", how="left", maintain_order="left")
            cols.add(col)
    return df, cols


#: columns that may hold arbitrary text (quotes, backslashes); other strings are ids, codes, enums
FREE_TEXT = {"title", "text", "description", "query_text", "name", "email", "phone", "brand", "category_path"}
#: sources whose text may carry broken-UTF-8 placeholders: rendered to bytes and patched
PATCHED_SOURCES = {"reviews", "queries"}


def _quoted(e: pl.Expr, escape: bool = False) -> pl.Expr:
    """JSON string literal of an id, code or timestamp text (no control characters in those)."""
    if escape:
        e = e.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
    return pl.concat_str(pl.lit('"'), e, pl.lit('"'))


def render_file(
    df: pl.DataFrame,
    over: pl.DataFrame,
    columns: list[str],
    fmt: str,
    ts_format: str,
    rename: dict[str, str] | None = None,
    extra: pl.Series | None = None,
    typed: bool = False,
) -> pl.DataFrame:
    """The frame to write: typed columns (Parquet), text cells (CSV) or one JSON line per row (JSONL)."""
    df, raw_cols = _frame_with_raw(df, over)
    rename = rename or {}
    exprs = []
    for c in columns:
        dtype = df.schema[c]
        v = pl.col(c)
        raw = pl.col(f"{c}__raw") if c in raw_cols else None
        is_time = isinstance(dtype, pl.Datetime)
        is_num = dtype in (pl.Float64, pl.Int64)
        out = rename.get(c, c)
        if fmt == "parquet":
            if raw is not None:
                assert not typed, f"text in the typed Parquet column {c}"
                text = _time_text(v, "iso_z") if is_time else _num_text(v)
                exprs.append(pl.coalesce(raw, text).alias(out))
            elif isinstance(dtype, pl.Enum | pl.Categorical):
                exprs.append(v.cast(pl.String).alias(out))
            else:
                exprs.append(v.alias(out))
        elif fmt == "csv":
            text = _time_text(v, ts_format) if is_time else v.cast(pl.String)
            exprs.append((pl.coalesce(raw, text) if raw is not None else text).alias(out))
        else:  # jsonl: a JSON fragment per cell
            if is_time:
                text = _time_text(v, ts_format) if ts_format == "epoch" else _quoted(_time_text(v, ts_format))
            elif is_num:
                text = _num_text(v)
            elif c in FREE_TEXT:
                text = _json_str(v.cast(pl.String))
            else:
                text = _quoted(v.cast(pl.String))
            if raw is not None:
                text = pl.when(raw.is_not_null()).then(_quoted(raw, escape=True)).otherwise(text)
            exprs.append(text.fill_null("null").alias(out))
    if extra is not None:
        exprs.append(
            pl.lit(extra).alias(extra.name)
            if fmt != "jsonl"
            else _quoted(pl.lit(extra)).fill_null("null").alias(extra.name)
        )
    out_df = df.select(exprs)
    if fmt != "jsonl":
        return out_df
    parts: list[pl.Expr] = []
    for i, name in enumerate(out_df.columns):
        parts.append(pl.lit(("{" if i == 0 else ",") + json.dumps(name) + ":"))
        parts.append(pl.col(name))
    parts.append(pl.lit("}"))
    return out_df.select(pl.concat_str(parts).alias("line"))


def write_rendered(out: pl.DataFrame, fmt: str, path: Path, patch_utf8: bool) -> None:
    """Write a rendered frame; text of `patch_utf8` files has its placeholders turned into invalid bytes."""
    if fmt == "parquet":
        out.write_parquet(path, compression="zstd", statistics=True)
        return
    opts = {} if fmt == "csv" else {"include_header": False, "quote_style": "never"}
    if not patch_utf8:
        out.write_csv(path, **opts)
        return
    data = out.write_csv(**opts).encode("utf-8")
    for mark, bad in BROKEN_UTF8.items():
        m = mark.encode("utf-8")
        if m in data:
            data = data.replace(m, bad)
    path.write_bytes(data)


@dataclass
class LandingSummary:
    """What `land_shop` wrote (the full manifest is also in truth_root/manifest.json)."""

    landing_root: Path
    truth_root: Path
    files: int
    bytes: int
    rows_by_source: dict[str, int]
    faults: int
    schema_drift_file: str | None
    manifest: dict = field(repr=False)

    def __str__(self) -> str:
        rows = ", ".join(f"{k} {v:,}" for k, v in self.rows_by_source.items())
        return (
            f"{self.files} files ({self.bytes / 1e6:,.1f} MB) under {self.landing_root}: {rows}; "
            f"{self.faults:,} injected faults recorded in {self.truth_root}/faults.parquet; "
            f"schema drift in {self.schema_drift_file}"
        )


def write_files(shop, landing_root: Path) -> tuple[int, int, dict[str, int]]:
    """Write every planned file of `shop`; returns (files, bytes, rows by source)."""
    files = shop.files
    n_files, n_bytes = 0, 0
    rows_by_source: dict[str, int] = {}
    drift = shop.schema_drift["file"] if shop.schema_drift else None
    for source in files["source"].unique(maintain_order=True).to_list():
        landed = shop.landed[source]
        columns = CONTRACTS[source].column_names
        over = shop.overrides[source]
        if over.height:  # `_rid` is the row position in `landed`
            over = over.with_columns(landed["_file"].gather(over["_rid"]).alias("_file"))
        perm = shop.file_order[source]
        bounds = (
            landed.select(pl.col("_file").gather(perm)).group_by("_file", maintain_order=True).agg(pl.len().alias("n"))
        )
        starts = np.concatenate([[0], np.cumsum(bounds["n"].to_numpy())[:-1]])
        info = {r["file"]: r for r in files.filter(pl.col("source") == source).iter_rows(named=True)}
        over_by_file = over.partition_by("_file", as_dict=True) if over.height else {}
        for (fname, n), start in zip(bounds.iter_rows(), starts, strict=True):
            fname = str(fname)
            meta = info[fname]
            sub = landed[perm[int(start) : int(start + n)]]
            ov = over_by_file.get((fname,), over.clear() if over.height else shop.overrides[source])
            rename, extra = None, None
            if fname == drift:
                rename = dict(SCHEMA_DRIFT_RENAME)
                rng = np.random.default_rng(shop.config.seed + 99)
                camp = np.array(["spring_sale", "newsletter_w1", "retarget_cart", "brand_push", "affiliate_x"])
                vals = camp[rng.integers(0, camp.size, sub.height)]
                extra = pl.select(
                    pl.when(pl.Series(rng.random(sub.height) < 0.3))
                    .then(None)
                    .otherwise(pl.Series(vals))
                    .alias(SCHEMA_DRIFT_EXTRA)
                ).to_series()
            out = render_file(
                sub, ov, columns, meta["format"], meta["ts_format"], rename=rename, extra=extra, typed=meta["typed"]
            )
            path = landing_root / fname
            path.parent.mkdir(parents=True, exist_ok=True)
            write_rendered(out, meta["format"], path, patch_utf8=source in PATCHED_SOURCES)
            n_files += 1
            n_bytes += path.stat().st_size
            rows_by_source[source] = rows_by_source.get(source, 0) + int(n)
    return n_files, n_bytes, rows_by_source


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (relative posix path → hex), for determinism checks."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
