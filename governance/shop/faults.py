"""Fault injection into the landed copy of each source, with a truth row for every injected fault.

Rows are chosen with exact counts (`round(rate × eligible)`) and at most one value fault per
(row, column), so the truth is unambiguous: a row carries one truth row per fault, and a faulty
cell's true value is in the truth row's `detail`. Duplicates are made from rows that carry no
other fault. Text that a file must write differently from the typed value ("$12.50", "n/a") is kept
as a sparse override (`_rid`, `column`, `raw`) rather than as string columns, to stay small at 10M rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from governance.shop.config import ShopConfig
from governance.shop.ids import UNKNOWN_OFFSET, make_ids
from governance.shop.util import TS, US, concat, exact_count, pick, to_ts, uniform_below
from governance.shop.vocab import FX_RATES

#: invalid UTF-8 written for each placeholder character found in text (placeholders live in memory only)
BROKEN_UTF8: dict[str, bytes] = {
    "\ue000": b"\xff",  # a byte that never occurs in UTF-8
    "\ue001": b"\xc3\x28",  # lead byte followed by a non-continuation byte
    "\ue002": b"\xe9",  # Latin-1 'é' written raw (mojibake source)
    "\ue003": b"\xed\xa0\x80",  # an encoded UTF-16 surrogate
    "\ue004": b"\x80\x80",  # stray continuation bytes
}
UNPARSABLE_NUMBERS = ("n/a", "abc", "", "N/A", "-", "#VALUE!", "unknown")
UNPARSABLE_NUMBERS_CSV = ("n/a", "abc", "N/A", "-", "#VALUE!", "unknown")  # "" would read as null in CSV
UNPARSABLE_TIMES = ("n/a", "not a date", "", "0000-00-00 00:00:00", "2024-13-45T25:61:00Z", "yesterday")
UNPARSABLE_TIMES_CSV = ("n/a", "not a date", "0000-00-00 00:00:00", "2024-13-45T25:61:00Z", "yesterday")
FUTURE_SHIFTS_DAYS = (36_525, 73_050)  # ~100 and ~200 years ahead; plus a fixed 2099-12-31T23:59:59Z
FIXED_FUTURE_US = 4_102_444_799 * US


def text_of(s: pl.Series, width: int = 60) -> pl.Series:
    """Short text of values for truth `detail` (ISO for timestamps, 'null' for nulls)."""
    if s.dtype == TS or isinstance(s.dtype, pl.Datetime):
        t = s.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    else:
        t = s.cast(pl.String)
    t = t.fill_null("null")
    return pl.select(
        pl.when(t.str.len_chars() > width).then(pl.concat_str(t.str.slice(0, width - 3), pl.lit("..."))).otherwise(t)
    ).to_series()


def money_text(v: pl.Series, style: np.ndarray) -> pl.Series:
    """Prices written as text: 0 "$12.50", 1 " 12.5 ", 2 "1,299.00" (or "USD 12.50" under 1000), 3 "12.50 USD"."""
    cents = (v * 100).round(0).cast(pl.Int64)
    d = cents // 100
    c = (cents % 100).cast(pl.String).str.zfill(2)
    plain = pl.concat_str(d.cast(pl.String), pl.lit("."), c)
    thousands = pl.concat_str(
        (d // 1000).cast(pl.String), pl.lit(","), (d % 1000).cast(pl.String).str.zfill(3), pl.lit("."), c
    )
    millions = pl.concat_str(
        (d // 1_000_000).cast(pl.String),
        pl.lit(","),
        ((d // 1000) % 1000).cast(pl.String).str.zfill(3),
        pl.lit(","),
        (d % 1000).cast(pl.String).str.zfill(3),
        pl.lit("."),
        c,
    )
    st = pl.Series(style)
    return pl.select(
        pl.when(st == 0)
        .then(pl.concat_str(pl.lit("$"), plain))
        .when(st == 1)
        .then(pl.concat_str(pl.lit(" "), v.cast(pl.String), pl.lit(" ")))
        .when((st == 2) & (d >= 1_000_000))
        .then(millions)
        .when((st == 2) & (d >= 1000))
        .then(thousands)
        .when(st == 2)
        .then(pl.concat_str(pl.lit("USD "), plain))
        .otherwise(pl.concat_str(plain, pl.lit(" USD")))
    ).to_series()


def int_text(v: pl.Series, style: np.ndarray) -> pl.Series:
    """Integers written as text: " 3 ", "3.0", "1,234" (or "#3" under 1000)."""
    st = pl.Series(style % 3)
    s = v.cast(pl.String)
    return pl.select(
        pl.when(st == 0)
        .then(pl.concat_str(pl.lit(" "), s, pl.lit(" ")))
        .when(st == 1)
        .then(pl.concat_str(s, pl.lit(".0")))
        .when(v.abs() >= 1000)
        .then(pl.concat_str((v // 1000).cast(pl.String), pl.lit(","), (v % 1000).cast(pl.String).str.zfill(3)))
        .otherwise(pl.concat_str(pl.lit("#"), s))
    ).to_series()


def luhn_cards(rng: np.random.Generator, n: int) -> pl.Series:
    """16-digit Visa-like numbers with a valid Luhn check digit, grouped in fours or not."""
    digits = rng.integers(0, 10, (n, 16))
    digits[:, 0] = 4
    body = digits[:, :15]
    weights = np.where(np.arange(15)[::-1] % 2 == 0, 2, 1)  # double every second digit from the right
    prod = body * weights
    prod = np.where(prod > 9, prod - 9, prod)
    digits[:, 15] = (10 - prod.sum(axis=1) % 10) % 10
    if n == 0:
        return pl.Series([], dtype=pl.String)
    as_str = pl.select(pl.concat_str([pl.Series(digits[:, i]).cast(pl.String) for i in range(16)])).to_series()
    spaced = concat(
        as_str.str.slice(0, 4),
        pl.lit(" "),
        as_str.str.slice(4, 4),
        pl.lit(" "),
        as_str.str.slice(8, 4),
        pl.lit(" "),
        as_str.str.slice(12, 4),
    )
    grouped = pl.Series(rng.random(n) < 0.6)
    return pl.select(pl.when(grouped).then(spaced).otherwise(as_str)).to_series()


@dataclass
class Injector:
    """Faults of one source: mutable landed columns, 'taken' cells, truth and overrides."""

    source: str
    config: ShopConfig
    rng: np.random.Generator
    base: pl.DataFrame  # contract columns + _rid, _file, _order (+ internal helper columns)
    key: str
    cols: dict[str, pl.Series] = field(default_factory=dict)
    taken: dict[str, np.ndarray] = field(default_factory=dict)
    truth: list[pl.DataFrame] = field(default_factory=list)
    overrides: list[pl.DataFrame] = field(default_factory=list)
    eligible: dict[str, int] = field(default_factory=dict)
    extra: list[pl.DataFrame] = field(default_factory=list)
    file_format: np.ndarray | None = None  # per base row: "csv" | "jsonl" | "parquet"
    text_ok: np.ndarray | None = None  # per base row: may a numeric/timestamp cell be written as text

    def __post_init__(self) -> None:
        self.n = self.base.height
        self.cols = {c: self.base[c] for c in self.base.columns}
        self.taken = {c: np.zeros(self.n, dtype=bool) for c in self.base.columns}
        self.faulty = np.zeros(self.n, dtype=bool)
        self.rid = self.base["_rid"].to_numpy()
        self.next_rid = int(self.rid.max()) + 1 if self.n else 0

    # -- choosing -------------------------------------------------------------------------------
    def rate(self, kind: str) -> float:
        return self.config.rate(self.source, kind)

    def select(
        self, kind: str, spec: dict[str, np.ndarray], joint: tuple[str, ...] = (), count: int | None = None
    ) -> dict[str, np.ndarray]:
        """Rows for `kind`: one column each among `spec`'s eligible and still-free columns."""
        names = list(spec)
        masks = np.stack([np.broadcast_to(spec[c], (self.n,)) for c in names])
        any_eligible = masks.any(axis=0)
        self.eligible[kind] = self.eligible.get(kind, 0) + int(any_eligible.sum())
        free = masks & ~np.stack([self.taken[c] for c in names])
        for j in joint:
            free &= ~self.taken[j]
        cand = np.flatnonzero(free.any(axis=0))
        n = exact_count(self.rate(kind), int(any_eligible.sum())) if count is None else count
        n = min(n, cand.size)
        if n == 0:
            return {}
        rows = np.sort(self.rng.choice(cand, n, replace=False))
        score = self.rng.random((len(names), n)) * free[:, rows]
        which = score.argmax(axis=0)
        out = {}
        for i, c in enumerate(names):
            r = rows[which == i]
            if r.size:
                out[c] = r
                self.taken[c][r] = True
        for j in joint:
            self.taken[j][rows] = True
        self.faulty[rows] = True
        return out

    # -- editing --------------------------------------------------------------------------------
    def get(self, col: str, rows: np.ndarray) -> pl.Series:
        return self.cols[col].gather(rows)

    def put(self, col: str, rows: np.ndarray, values: pl.Series | None) -> None:
        s = self.cols[col]
        if values is None:
            values = pl.Series([None] * len(rows), dtype=s.dtype)
        self.cols[col] = s.scatter(rows, values.cast(s.dtype))

    def raw(self, col: str, rows: np.ndarray, text: pl.Series) -> None:
        self.overrides.append(
            pl.DataFrame(
                {"_rid": self.rid[rows], "column": [col] * len(rows), "raw": text.cast(pl.String)},
                schema={"_rid": pl.Int64, "column": pl.String, "raw": pl.String},
            )
        )

    def record(
        self,
        kind: str,
        rows: np.ndarray | None,
        column: str | pl.Series | None,
        detail: pl.Series | str,
        rids: np.ndarray | None = None,
    ) -> None:
        rid = self.rid[rows] if rids is None else rids
        n = len(rid)
        det = detail if isinstance(detail, pl.Series) else pl.Series([detail] * n, dtype=pl.String)
        col = column if isinstance(column, pl.Series) else pl.Series([column] * n, dtype=pl.String)
        self.truth.append(
            pl.DataFrame(
                {"_rid": rid, "fault": [kind] * n, "column": col.cast(pl.String), "detail": det.cast(pl.String)},
                schema={"_rid": pl.Int64, "fault": pl.String, "column": pl.String, "detail": pl.String},
            )
        )

    def fmt(self, rows: np.ndarray) -> np.ndarray:
        return self.file_format[rows] if self.file_format is not None else np.full(len(rows), "jsonl")

    # -- generic value faults -------------------------------------------------------------------
    def nulls(self, kind: str, spec: dict[str, np.ndarray]) -> None:
        for col, rows in self.select(kind, spec).items():
            self.record(kind, rows, col, concat(pl.lit("true: "), text_of(self.get(col, rows))))
            self.put(col, rows, None)

    def _textual(self, spec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.text_ok is None:
            return spec
        return {c: np.broadcast_to(m, (self.n,)) & self.text_ok for c, m in spec.items()}

    def number_as_string(self, spec: dict[str, np.ndarray]) -> None:
        kind = "number_as_string"
        for col, rows in self.select(kind, self._textual(spec)).items():
            v = self.get(col, rows)
            style = self.rng.integers(0, 4, rows.size)
            text = money_text(v, style) if v.dtype == pl.Float64 else int_text(v, style)
            self.raw(col, rows, text)
            self.record(kind, rows, col, concat(pl.lit("'"), text, pl.lit("' = "), text_of(v)))

    def unparsable(self, spec: dict[str, np.ndarray]) -> None:
        kind = "unparsable_value"
        for col, rows in self.select(kind, self._textual(spec)).items():
            v = self.get(col, rows)
            is_time = isinstance(v.dtype, pl.Datetime)
            csv = self.fmt(rows) == "csv"
            bank, bank_csv = (
                (UNPARSABLE_TIMES, UNPARSABLE_TIMES_CSV) if is_time else (UNPARSABLE_NUMBERS, UNPARSABLE_NUMBERS_CSV)
            )
            token = pl.select(
                pl.when(pl.Series(csv))
                .then(pick(bank_csv, self.rng.integers(0, len(bank_csv), rows.size)))
                .otherwise(pick(bank, self.rng.integers(0, len(bank), rows.size)))
            ).to_series()
            self.raw(col, rows, token)
            self.record(kind, rows, col, concat(pl.lit("'"), token, pl.lit("'; true: "), text_of(v)))

    def timestamps(self, col_spec: dict[str, np.ndarray]) -> None:
        for kind in ("future_timestamp", "epoch_zero_timestamp"):
            for col, rows in self.select(kind, col_spec).items():
                v = self.get(col, rows)
                if kind == "epoch_zero_timestamp":
                    new = to_ts(np.zeros(rows.size, dtype=np.int64))
                else:
                    which = self.rng.integers(0, 3, rows.size)
                    us = v.dt.epoch("us").to_numpy()
                    shift = np.array(FUTURE_SHIFTS_DAYS + (0,))[which] * 86_400 * US
                    new = to_ts(np.where(which == 2, FIXED_FUTURE_US, us + shift))
                self.put(col, rows, new)
                self.record(kind, rows, col, concat(pl.lit("true: "), text_of(v)))

    def prices(self, spec: np.ndarray, currency: bool = True) -> None:
        for kind in ("negative_price", "absurd_price"):
            rows = self.select(kind, {"price": spec}).get("price")
            if rows is None:
                continue
            v = self.get("price", rows)
            if kind == "negative_price":
                new = -v
            else:
                big = self.rng.random(rows.size) < 0.5
                new = pl.select(
                    pl.when(pl.Series(big)).then(pl.lit(9_999_999.0)).otherwise((v * 1000).round(2))
                ).to_series()
            self.put("price", rows, new)
            self.record(kind, rows, "price", concat(pl.lit("true: "), text_of(v)))
        if currency:
            kind = "foreign_currency"
            rows = self.select(kind, {"price": spec}, joint=("currency",)).get("price")
            if rows is not None:
                codes = list(FX_RATES)
                which = self.rng.integers(0, len(codes), rows.size)
                rate = np.array([FX_RATES[c] for c in codes])[which]
                v = self.get("price", rows)
                conv = (v * pl.Series(rate)).round(2)
                self.put("price", rows, conv)
                self.put("currency", rows, pick(codes, which))
                self.record(
                    kind,
                    rows,
                    "currency",
                    concat(
                        pick(codes, which),
                        pl.lit(" at "),
                        pl.Series(rate).cast(pl.String),
                        pl.lit(" per USD; true: USD "),
                        text_of(v),
                    ),
                )

    def unknown_refs(self, kind: str, col: str, entity: str, spec: np.ndarray) -> None:
        rows = self.select(kind, {col: spec}).get(col)
        if rows is None:
            return
        pool = max(5, rows.size // 3)
        idx = UNKNOWN_OFFSET + (len(self.source) * 100_000) + self.rng.integers(0, pool, rows.size)
        v = self.get(col, rows)
        self.put(col, rows, make_ids(entity, idx, self.config.seed))
        self.record(kind, rows, col, concat(pl.lit("true: "), text_of(v)))

    # -- new rows ---------------------------------------------------------------------------------
    def append(
        self, kind: str, frame: pl.DataFrame, detail: pl.Series | str, column: str | pl.Series | None = None
    ) -> None:
        rids = np.arange(self.next_rid, self.next_rid + frame.height)
        self.next_rid += frame.height
        frame = frame.with_columns(pl.Series("_rid", rids))
        self.extra.append(frame.select(self.base.columns))
        self.record(kind, None, column, detail, rids=rids)

    def current(self, rows: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({c: self.cols[c].gather(rows) for c in self.base.columns})

    def duplicates(
        self,
        order_jitter_us: Callable[[int], np.ndarray],
        change: Callable[[pl.DataFrame], tuple[pl.DataFrame, str | pl.Series, pl.Series]],
        kinds: tuple[str, ...] = ("exact_duplicate", "key_duplicate"),
    ) -> None:
        """Exact copies and re-sent copies with one changed field, of rows that carry no other fault."""
        used = self.faulty.copy()
        for kind in kinds:
            self.eligible[kind] = self.n
            clean_rows = np.flatnonzero(~used)
            k = min(exact_count(self.rate(kind), self.n), clean_rows.size)
            if k == 0:
                continue
            rows = np.sort(self.rng.choice(clean_rows, k, replace=False))
            used[rows] = True
            copy = self.current(rows).with_columns(pl.col("_order") + pl.Series(order_jitter_us(k)))
            if kind == "exact_duplicate":
                self.append(kind, copy, concat(pl.lit("exact copy of "), copy[self.key]))
            else:
                copy, col, detail = change(copy)
                self.append(kind, copy, detail, column=col)

    # -- result ---------------------------------------------------------------------------------------
    def finish(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        # one contiguous chunk per column (file-order gathers are ~3x faster on it), built column by
        # column so that each edited column's old buffers are released before the next is copied
        cols = {}
        for c in self.base.columns:
            parts = [self.cols[c], *(e[c] for e in self.extra)]
            self.cols[c] = None
            cols[c] = pl.concat(parts, rechunk=True) if len(parts) > 1 else parts[0].rechunk()
            del parts
        landed = pl.DataFrame(cols)
        assert np.array_equal(landed["_rid"].to_numpy(), np.arange(landed.height)), "_rid must be the row position"
        truth = (
            pl.concat(self.truth)
            if self.truth
            else pl.DataFrame(schema={"_rid": pl.Int64, "fault": pl.String, "column": pl.String, "detail": pl.String})
        )
        over = (
            pl.concat(self.overrides)
            if self.overrides
            else pl.DataFrame(schema={"_rid": pl.Int64, "column": pl.String, "raw": pl.String})
        )
        return landed, truth, over


# ---------------------------------------------------------------------------------------------------
# text faults (reviews.text, queries.query_text)

PII_REVIEW = (
    "Contact me at {email} if you have questions.",
    "My email is {email}, happy to share photos.",
    "Call me on {phone} for details.",
    "You can reach me at {phone}.",
    "I paid with my card {card} and it went through.",
    "Card number {card} was charged twice?",
)
PII_QUERY = ("{text} {email}", "{text} {phone}", "{text} card {card}", "{email} {text}")


def pii_text(
    inj: Injector, col: str, base_text: pl.Series, rows: np.ndarray, emails: pl.Series, phones: pl.Series, query: bool
) -> tuple[pl.Series, pl.Series]:
    n = rows.size
    kind = inj.rng.integers(0, 3, n)  # email, phone, card
    cards = luhn_cards(inj.rng, n)
    if query:
        tmpl = np.where(kind == 0, np.where(inj.rng.random(n) < 0.5, 0, 3), kind)
        bank = PII_QUERY
    else:
        tmpl = kind * 2 + inj.rng.integers(0, 2, n)
        bank = PII_REVIEW
    t = pick(bank, tmpl)
    frame = pl.DataFrame({"t": t, "text": base_text, "email": emails, "phone": phones, "card": cards})
    expr = pl.col("t")
    for k in ("text", "email", "phone", "card"):
        expr = expr.str.replace("{" + k + "}", pl.col(k), literal=True)
    out = frame.select(expr).to_series()
    if not query:
        out = pl.select(pl.concat_str(base_text, pl.lit(" "), out)).to_series()
    kind_name = pick(("email", "phone", "card_number"), kind)
    value = pl.select(
        pl.when(pl.Series(kind == 0)).then(emails).when(pl.Series(kind == 1)).then(phones).otherwise(cards)
    ).to_series()
    return out, concat(kind_name, pl.lit(": "), value)


def text_faults(inj: Injector, col: str, emails: pl.Series, phones: pl.Series, query: bool) -> None:
    """PII added to free text, or invalid UTF-8 placeholders inserted into it (never both in one row)."""
    has_text = inj.cols[col].is_not_null().to_numpy()
    free = has_text.copy()  # one text fault per row, so an inserted bad byte never splits a PII value
    for kind in ("pii_in_text", "broken_utf8"):
        inj.eligible[kind] = int(has_text.sum())
        k = min(exact_count(inj.rate(kind), int(has_text.sum())), int(free.sum()))
        if k == 0:
            continue
        rows = np.sort(inj.rng.choice(np.flatnonzero(free), k, replace=False))
        free[rows] = False
        inj.faulty[rows] = True
        text = inj.get(col, rows)
        if kind == "pii_in_text":
            new, detail = pii_text(inj, col, text, rows, emails.gather(rows), phones.gather(rows), query)
        else:
            which = inj.rng.integers(0, len(BROKEN_UTF8), k)
            marks = pick(list(BROKEN_UTF8), which)
            length = text.str.len_chars().to_numpy()
            pos = 1 + (inj.rng.random(k) * np.maximum(length - 1, 1)).astype(np.int64)
            new = (
                pl.DataFrame({"t": text, "p": pos, "m": marks})
                .select(
                    pl.concat_str(
                        pl.col("t").str.slice(0, pl.col("p")), pl.col("m"), pl.col("t").str.slice(pl.col("p"))
                    )
                )
                .to_series()
            )
            hexes = pick([v.hex(" ") for v in BROKEN_UTF8.values()], which)
            detail = concat(pl.lit("invalid bytes "), hexes, pl.lit(" at character "), pl.Series(pos).cast(pl.String))
        inj.put(col, rows, new)
        inj.record(kind, rows, col, detail)


def fake_contacts(rng: np.random.Generator, n: int) -> tuple[pl.Series, pl.Series]:
    """Contact details of nobody in the users table (anonymous shoppers who typed theirs)."""
    local = pick(
        ("john.doe", "jane.smith", "mike88", "anna.k", "shopper2024", "m.rossi", "lee.w"), rng.integers(0, 7, n)
    )
    dom = pick(("gmail.com", "yahoo.com", "outlook.com", "web.de"), rng.integers(0, 4, n))
    num = pl.Series(rng.integers(10, 99, n)).cast(pl.String)
    email = concat(local, num, pl.lit("@"), dom)
    phone = concat(
        pl.lit("+1 "),
        pl.Series(rng.integers(200, 999, n)).cast(pl.String),
        pl.lit("-555-"),
        pl.Series(rng.integers(0, 10_000, n)).cast(pl.String).str.zfill(4),
    )
    return email, phone


def choose_other(rng: np.random.Generator, current: np.ndarray, n_choices: int) -> np.ndarray:
    """A uniformly random index different from `current`."""
    return (current + 1 + uniform_below(rng, np.full(current.size, n_choices - 1))) % n_choices
