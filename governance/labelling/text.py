"""Text preparation and the "unlabelable" gate shared by the review and query labellers.

A text the model cannot sensibly judge gets ``label = null`` and an explicit reason instead of a
silent guess. Reasons start with a stable code (``empty``, ``no_letters``, ``non_english``,
``too_long``) followed by a human-readable detail, e.g. ``"non_english: ASCII letter share 0.08 < 0.60"``.

The language check is deliberately cheap (no language-id model):

1. the share of ASCII letters among all letters — catches Cyrillic, CJK, Arabic, Greek, …;
2. for texts of at least ``min_words_for_stopwords`` words in Latin script: English function words
   ("the", "and", "it", …) against those of Spanish/French/German/Italian/Portuguese. A text with
   no English function word and at least two foreign ones is flagged. Short English texts without
   function words ("Great dress, perfect fit") therefore pass.
"""

from __future__ import annotations

import re

#: default cut-off for "absurdly long" texts (the reviews in the real data are ≤ ~510 chars)
MAX_CHARS = 5000
MIN_ASCII_LETTER_SHARE = 0.6
MIN_WORDS_FOR_STOPWORDS = 5

ENGLISH_STOPWORDS = frozenset("""
a about above after again all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or
other our ours out over own same she should so some such than that the their them then there these they
this those through to too under until up very was we were what when where which while who whom why will
with would you your yours i'm it's don't didn't doesn't isn't wasn't won't can't i've i'd i'll
""".split())

FOREIGN_STOPWORDS = frozenset("""
el la los las del que y es muy pero con para por una uno está este esta esto lo se su sus mi al
le les des et est une pas très avec pour dans sur qui ce cette mais je vous sont au aux du
der die das und ist nicht ein eine mit für auf sehr ich sie es zu den dem war auch aber wie
il di che non per sono della questo questa molto ma gli nel alla
não com um uma muito os mas ao pelo pela são
""".split())

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def compose_review_text(title: str | None, text: str | None) -> str:
    """The text the sentiment model reads: ``Title + ". " + Review Text`` when there is a title, the
    text alone when there is none (never ``". " + text``); the same function at training and labelling
    time. A null text becomes ``""``."""
    title = (title or "").strip() if isinstance(title, str) else ""
    text = text if isinstance(text, str) else ""
    return f"{title}. {text}" if title else text


def unlabelable_reason(text: str | None, *, max_chars: int = MAX_CHARS, check_language: bool = True,
                       min_ascii_letter_share: float = MIN_ASCII_LETTER_SHARE,
                       min_words_for_stopwords: int = MIN_WORDS_FOR_STOPWORDS) -> str | None:
    """Why `text` cannot be labelled, or None when it can."""
    if text is None or not isinstance(text, str) or not text.strip():
        return "empty: no text"
    n = len(text)
    if n > max_chars:
        return f"too_long: {n:,} chars > {max_chars:,}"
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "no_letters: only emoji, punctuation, digits or symbols"
    if not check_language:
        return None
    ascii_share = sum(1 for c in letters if c.isascii()) / len(letters)
    if ascii_share < min_ascii_letter_share:
        return f"non_english: ASCII letter share {ascii_share:.2f} < {min_ascii_letter_share:.2f}"
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= min_words_for_stopwords:
        en = sum(w in ENGLISH_STOPWORDS for w in words)
        foreign = sum(w in FOREIGN_STOPWORDS for w in words)
        if foreign >= 2 and foreign > en:
            return f"non_english: {foreign} foreign vs {en} English function words"
    return None


def unlabelable_reasons(texts, **kwargs) -> list[str | None]:
    return [unlabelable_reason(t, **kwargs) for t in texts]
