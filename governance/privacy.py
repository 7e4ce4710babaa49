"""Personal data only where it belongs: masking for everything people read outside the raw layer.

The contracts say which columns are personal data (``Column(pii=True)``: e-mail, phone, name). The
lake keeps them — raw, clean and the quarantine table's ``record`` are readable only by those who may
read raw data — but previews, quarantine-reason samples, check examples, log lines and every other
Dagster metadata value go through :func:`mask_frame` / :func:`mask_text` first:

* a PII column (under its contract name or any alias a landed file may use) shows ``‹pii›``;
* a JSON record (a quarantined row kept whole) has the values of its PII keys masked, valid or not;
* the PII values of the rows shown are masked wherever else they appear (a reason quoting a name);
* anything e-mail or phone shaped in any text is masked as well, whichever column it came from.

All of it is Polars expressions over the (small) frames being shown; nothing loops over rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from governance.contracts import CONTRACTS, SourceContract

MASK = "‹pii›"
EMAIL_MASK = "‹email›"
PHONE_MASK = "‹phone›"
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
#: a run of digits and phone punctuation; a phone when it holds nine or more digits and is not a date
_PHONE_RE = re.compile(r"(?<![\w-])\+?\(?\d[\d ().-]{6,}\d(?![\w-])")
_NOT_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|^[\d.]+$|^\d{1,3}(,\d{3})+$")
#: columns that hold a whole record as JSON text
RECORD_COLUMNS = ("record", "_extra_columns")
#: frames up to this many rows are shown (previews, samples) and get the per-cell phone pass
MAX_SHOWN_ROWS = 1000


def pii_columns(contract: SourceContract | None = None) -> frozenset[str]:
    """Lower-cased names (contract names and aliases) of the personal-data columns of one contract,
    or of every contract when none is given."""
    contracts = [contract] if contract is not None else list(CONTRACTS.values())
    names = set()
    for c in contracts:
        for col in c.columns:
            if col.pii:
                names.add(col.name.lower())
                names.update(a.lower() for a in col.aliases)
    return frozenset(names)


def _json_key_pattern(keys: Iterable[str]) -> str:
    """ "key": "value" for the given keys (any case; escaped quotes inside the value allowed); a value
    cut off by truncation (no closing quote) is matched to the end."""
    alternatives = "|".join(sorted((re.escape(k) for k in keys), key=len, reverse=True))
    return rf'(?i)("(?:{alternatives})"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)'


def _mask_phones(text: str) -> str:
    def one(match: re.Match) -> str:
        found = match.group(0)
        digits = sum(ch.isdigit() for ch in found)
        return found if digits < 9 or _NOT_PHONE.search(found.strip()) else PHONE_MASK
    return _PHONE_RE.sub(one, text)


def mask_text(text: str | None, values: Iterable[str] = (), keys: Iterable[str] | None = None) -> str | None:
    """One string (a log line, a reason, an error) with PII masked: JSON values of PII keys, the given
    PII values, and anything e-mail or phone shaped."""
    if text is None:
        return None
    keys = pii_columns() if keys is None else keys
    text = re.sub(_json_key_pattern(keys), rf'\1"{MASK}"', text)
    for value in sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return _mask_phones(_EMAIL_RE.sub(EMAIL_MASK, text))


def pii_values(frame: pl.DataFrame, keys: Iterable[str] | None = None) -> list[str]:
    """The personal-data values in a frame: its PII columns and the PII keys' values in its JSON records."""
    keys = set(pii_columns() if keys is None else keys)
    pattern = _json_key_pattern(keys)
    values: list[pl.Series] = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        if name.lower() in keys:
            values.append(frame[name])
        elif name in RECORD_COLUMNS:
            found = frame[name].str.extract_all(pattern).explode()
            values.append(found.str.replace(r'^"[^"]*"\s*:\s*"', "").str.replace(r'"$', ""))
    if not values:
        return []
    return pl.concat(values).drop_nulls().unique().sort().to_list()


def mask_frame(frame: pl.DataFrame, contract: SourceContract | None = None) -> pl.DataFrame:
    """The frame as it may be shown: PII columns masked, PII keys of JSON records masked, the rows'
    PII values masked wherever else they appear, e-mail- and phone-shaped text masked everywhere."""
    keys = pii_columns(contract) | pii_columns()
    values = [v for v in pii_values(frame, keys) if len(v) >= 3]
    pattern = _json_key_pattern(keys)
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if name.lower() in keys:
            out.append(pl.when(col.is_null()).then(None).otherwise(pl.lit(MASK)).alias(name))
            continue
        if dtype != pl.String:
            out.append(col)
            continue
        if name in RECORD_COLUMNS:
            col = col.str.replace_all(pattern, f'${{1}}"{MASK}"')
        if values:
            col = col.str.replace_many(values, [MASK] * len(values))
        out.append(col.str.replace_all(EMAIL_PATTERN, EMAIL_MASK).alias(name))
    masked = frame.select(out)
    # phone numbers: Polars' regex has no look-around and cannot count digits, so the (few) cells
    # of a frame being shown are checked one by one
    text_cols = [n for n, d in masked.schema.items() if d == pl.String and n.lower() not in keys]
    if text_cols and masked.height <= MAX_SHOWN_ROWS:
        masked = masked.with_columns(pl.col(n).map_elements(_mask_phones, return_dtype=pl.String) for n in text_cols)
    return masked
