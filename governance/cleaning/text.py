"""Text normalisation and PII masking as Polars expressions."""

from __future__ import annotations

import polars as pl

EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"
#: 13–19 digits in groups separated by spaces or dashes (payment cards)
CARD = r"\b(?:\d[ \-]?){12,18}\d\b"
#: an optional country code, then 9–12 digits in the usual groupings
PHONE = r"(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{2,4}\)[\s.\-]?|\d{2,4}[\s.\-])\d{3,4}[\s.\-]?\d{3,4}\b"
REPLACEMENT_CHAR = "\ufffd"


def tidy(expr: pl.Expr) -> pl.Expr:
    """Unicode NFC, trimmed, inner whitespace collapsed to one space; empty becomes null."""
    out = expr.str.normalize("NFC").str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(out == "").then(None).otherwise(out)


def canonical_key(expr: pl.Expr) -> pl.Expr:
    """A matching key: lower case, letters and digits only, single spaces."""
    return (expr.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ")
            .str.strip_chars())


LEGAL_SUFFIX = r"\s+(inc|incorporated|ltd|limited|llc|plc|co|corp|corporation|company|gmbh|ag|sa|srl|bv)$"


def brand_key(expr: pl.Expr) -> pl.Expr:
    """A brand's matching key: `canonical_key` without a legal-form suffix ("Acme Inc." ~ "ACME")."""
    return canonical_key(expr).str.replace(LEGAL_SUFFIX, "")


def compact_key(expr: pl.Expr) -> pl.Expr:
    """Letters and digits only, lower case: "3-Season" ~ "3Season", "Low-Sugar" ~ "LowSugar"."""
    return expr.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", "")


def title_tokens(expr: pl.Expr) -> pl.Expr:
    """A title's words as a set: NFKC, lower case, '&' read as 'and', a number joined to its unit
    ("16 oz" ~ "16oz"), punctuation dropped."""
    text = (expr.str.normalize("NFKC").str.to_lowercase().str.replace_all("&", " and ", literal=True)
            .str.replace_all(r"(\d)\s+([a-z]{1,3}\b)", "${1}${2}").str.replace_all(r"[^\p{L}\p{N}]+", " ")
            .str.strip_chars())
    return text.str.split(" ").list.eval(pl.element().filter(pl.element() != "")).list.unique()


def tokens(expr: pl.Expr) -> pl.Expr:
    return canonical_key(expr).str.split(" ").list.unique()


def category_path(expr: pl.Expr) -> pl.Expr:
    """'electronics>phones >  smartphones' → 'electronics > phones > smartphones' (spelling is
    canonicalised per level by the rule that uses this)."""
    return (expr.str.normalize("NFC").str.replace_all(r"\s*[>/|]\s*", " > ").str.replace_all(r"\s+", " ")
            .str.strip_chars(" >"))


def mask_pii(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all(EMAIL, "[EMAIL]").str.replace_all(CARD, "[CARD]")
            .str.replace_all(PHONE, "[PHONE]"))


def pii_count(expr: pl.Expr) -> pl.Expr:
    """Spans ``mask_pii`` replaces (cards are counted before phones, as they are masked first)."""
    no_email = expr.str.replace_all(EMAIL, " ")
    no_card = no_email.str.replace_all(CARD, " ")
    return (expr.str.count_matches(EMAIL) + no_email.str.count_matches(CARD)
            + no_card.str.count_matches(PHONE))


def damaged(expr: pl.Expr) -> pl.Expr:
    """Text that carried invalid UTF-8 (decoded with U+FFFD replacement characters)."""
    return expr.str.contains(REPLACEMENT_CHAR, literal=True)
