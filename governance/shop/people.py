"""Registered users: contact details (the PII columns), country, signup and profile edits.

Most users signed up long before the window; about a fifth sign up inside it, shortly before their
first session, so the users feed has a first-day snapshot and daily deltas of signups and edits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from governance.shop.config import ShopConfig
from governance.shop.ids import make_ids
from governance.shop.util import DAY_US, US, epoch_us, occurrence, pick, to_ts, uniform_below
from governance.shop.vocab import COUNTRIES, FIRST_NAMES, LAST_NAMES

NEW_USER_SHARE = 0.2
DAILY_PROFILE_EDIT_RATE = 0.003


def _digits(rng: np.random.Generator, n: int, width: np.ndarray | int) -> pl.Series:
    w = np.broadcast_to(np.asarray(width, dtype=np.int64), (n,))
    first = rng.integers(2, 10, n)
    rest = (rng.random(n) * 10.0 ** (w - 1)).astype(np.int64)
    return pl.select(
        pl.concat_str(pl.Series(first).cast(pl.String), pl.Series(rest).cast(pl.String).str.zfill(pl.Series(w - 1)))
    ).to_series()


def make_email(rng: np.random.Generator, first: pl.Series, last: pl.Series, country: np.ndarray) -> pl.Series:
    n = len(first)
    f = first.str.to_lowercase()
    la = last.str.to_lowercase().str.replace_all(" ", "")
    num = pl.Series(rng.integers(1, 9999, n)).cast(pl.String)
    style = rng.integers(0, 4, n)
    local = pl.select(
        pl.when(pl.Series(style == 0))
        .then(pl.concat_str(f, pl.lit("."), la, num))
        .when(pl.Series(style == 1))
        .then(pl.concat_str(f, la, num))
        .when(pl.Series(style == 2))
        .then(pl.concat_str(f.str.slice(0, 1), la, num))
        .otherwise(pl.concat_str(f, pl.lit("_"), la, num.str.slice(0, 2)))
    ).to_series()
    dom_flat = [d for c in COUNTRIES for d in c[4]]
    dom_off = np.concatenate([[0], np.cumsum([len(c[4]) for c in COUNTRIES])[:-1]])
    dom_n = np.array([len(c[4]) for c in COUNTRIES])
    domain = pick(dom_flat, dom_off[country] + uniform_below(rng, dom_n[country]))
    return pl.select(pl.concat_str(local, pl.lit("@"), domain)).to_series().alias("email")


def make_phone(rng: np.random.Generator, country: np.ndarray) -> pl.Series:
    cc = pick([c[2] for c in COUNTRIES], country)
    width = np.array([c[3] for c in COUNTRIES])[country]
    national = _digits(rng, len(country), width)
    return (
        pl.select(
            pl.concat_str(pl.lit("+"), cc, pl.lit(" "), national.str.slice(0, 3), pl.lit(" "), national.str.slice(3))
        )
        .to_series()
        .alias("phone")
    )


@dataclass
class Users:
    ids: pl.Series
    first: pl.Series
    last: pl.Series
    country: np.ndarray
    email: pl.Series
    phone: pl.Series
    activity: np.ndarray  # relative session rate
    is_new: np.ndarray  # signs up inside the window
    signup_us: np.ndarray | None = None
    versions: pl.DataFrame | None = None  # landed rows: user_idx, day, kind, email, phone, country, updated_at_us
    final: pl.DataFrame | None = None  # clean users table

    @property
    def n(self) -> int:
        return len(self.ids)


def make_users(config: ShopConfig, rng: np.random.Generator) -> Users:
    n = config.n_users
    cw = np.array([c[1] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), n, p=cw / cw.sum())
    first = pick(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), n))
    last = pick(LAST_NAMES, rng.integers(0, len(LAST_NAMES), n))
    email = make_email(rng, first, last, country)
    # the rare colliding address gets a distinguishing digit
    k = occurrence(email)
    email = pl.select(pl.when(k > 0).then(pl.concat_str(k.cast(pl.String), email)).otherwise(email)).to_series()
    return Users(
        ids=make_ids("user", np.arange(n), config.seed).alias("user_id"),
        first=first,
        last=last,
        country=country,
        email=email.alias("email"),
        phone=make_phone(rng, country),
        activity=rng.lognormal(0, 1.0, n),
        is_new=rng.random(n) < NEW_USER_SHARE,
    )


def finalize_users(users: Users, config: ShopConfig, rng: np.random.Generator, first_activity_us: np.ndarray) -> None:
    """Signups before first activity, then daily profile edits; fills signup_us, versions, final."""
    n = users.n
    ws, we = epoch_us(config.window_start), epoch_us(config.window_end)
    u = rng.random(n)
    old_signup = ws - (86_400 + (u * u * 3 * 365 * 86_400).astype(np.int64)) * US
    has_act = first_activity_us != np.iinfo(np.int64).max
    span = np.minimum(3 * DAY_US, np.maximum(first_activity_us - ws, 0))
    new_signup = np.where(
        has_act,
        first_activity_us - (rng.random(n) * span).astype(np.int64) - US,
        ws + (rng.random(n) * (we - ws - 3600 * US)).astype(np.int64),
    )
    signup = np.where(users.is_new, np.maximum(new_signup, ws), old_signup)
    signup = signup // US * US
    updated = np.where(users.is_new, signup, signup + (rng.random(n) * (ws - signup)).astype(np.int64) // US * US)
    users.signup_us = signup

    email, phone, country = users.email.clone(), users.phone.clone(), users.country.copy()
    day_of_signup = np.where(signup < ws + DAY_US, 0, (signup - ws) // DAY_US)
    frames = [
        pl.DataFrame(
            {
                "user_idx": np.arange(n),
                "day": day_of_signup,
                "kind": np.where(day_of_signup == 0, 0, 1),
                "email": email,
                "phone": phone,
                "country": country,
                "updated_at_us": updated,
            }
        )
    ]
    last_update = updated.copy()
    for d in range(1, config.days):
        day_start = ws + d * DAY_US
        edit = np.flatnonzero((signup < day_start) & (rng.random(n) < DAILY_PROFILE_EDIT_RATE))
        if edit.size == 0:
            continue
        what = rng.integers(0, 3, edit.size)  # 0 email, 1 phone, 2 moved country (new phone too)
        moved = edit[what == 2]
        country[moved] = rng.choice(len(COUNTRIES), moved.size)
        new_email = make_email(rng, users.first.gather(edit), users.last.gather(edit), country[edit])
        new_phone = make_phone(rng, country[edit])
        email = email.scatter(edit[what == 0], new_email.filter(pl.Series(what == 0))) if (what == 0).any() else email
        ph_rows = what >= 1
        phone = phone.scatter(edit[ph_rows], new_phone.filter(pl.Series(ph_rows))) if ph_rows.any() else phone
        t = day_start + rng.integers(0, 86_400, edit.size) * US
        last_update[edit] = t
        frames.append(
            pl.DataFrame(
                {
                    "user_idx": edit,
                    "day": np.full(edit.size, d),
                    "kind": np.full(edit.size, 2),
                    "email": email.gather(edit),
                    "phone": phone.gather(edit),
                    "country": country[edit],
                    "updated_at_us": t,
                }
            )
        )
    users.versions = pl.concat(frames).with_columns(
        pl.col("user_idx").cast(pl.Int64),
        pl.col("day").cast(pl.Int64),
        pl.col("kind").cast(pl.Int8),
        pl.col("country").cast(pl.Int64),
    )
    cc = pl.Series([c[0] for c in COUNTRIES])
    users.final = pl.DataFrame(
        {
            "user_id": users.ids,
            "email": email,
            "phone": phone,
            "name": pl.select(pl.concat_str(users.first, pl.lit(" "), users.last)).to_series().alias("name"),
            "country": cc.gather(country).alias("country"),
            "signup_at": to_ts(signup, "signup_at"),
            "updated_at": to_ts(last_update, "updated_at"),
        }
    )
