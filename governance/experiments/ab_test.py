"""Online A/B tests: stable assignment, per-variant metrics with intervals, SRM, CUPED, guardrails.

Assignment
    ``bucket = md5("<experiment>:<unit>")`` read as a number in [0, 1) (DuckDB's ``md5``, so it is
    vectorised and the same on every machine and version); the variants take consecutive slices of
    [0, 1) by weight. A unit keeps its variant for the life of the experiment, and a new experiment
    name reshuffles everyone.
Metrics (the user is the unit of randomisation and of analysis)
    * per-user means (conversion = bought at least once, revenue per user): Welch's t interval
      and two-sided p-value of the difference;
    * ratios of sums (click-through = clicks / searches): the delta method on per-user sums, so
      heavy searchers do not shrink the interval they do not earn.
SRM (sample-ratio mismatch)
    χ² goodness of fit of the users per variant against the planned weights; a p-value below
    0.001 (the usual threshold) means the split itself is broken and the results are not read.
CUPED
    ``y' = y − θ (x − mean x)`` with x the same user's pre-period value and
    ``θ = cov(x, y) / var(x)`` pooled over the variants; the difference of y' has the same
    expectation and less variance (reported as the share removed).
Guardrail
    revenue per user must not be significantly lower in the treatment (two-sided p < 0.05 with a
    negative difference fails it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

SRM_ALPHA = 0.001
ALPHA = 0.05


def assign(units: pl.Series | Sequence[str], experiment: str, variants: Sequence[str] = ("control", "treatment"),
           weights: Sequence[float] | None = None) -> pl.DataFrame:
    """unit, bucket in [0, 1), variant — by a stable hash of (experiment, unit)."""
    import duckdb  # noqa: PLC0415

    weights = np.asarray(weights if weights is not None else [1.0] * len(variants), dtype=np.float64)
    if len(weights) != len(variants) or (weights <= 0).any():
        raise ValueError("one positive weight per variant")
    edges = np.cumsum(weights / weights.sum())
    frame = pl.DataFrame({"unit": pl.Series(units, dtype=pl.String)})
    con = duckdb.connect()
    try:
        con.register("units", frame)
        name = experiment.replace("'", "''")
        hashed = con.sql(
            f"SELECT unit, CAST(('0x' || substr(md5('{name}:' || unit), 1, 13)) AS UBIGINT) / POW(2, 52) AS bucket "
            "FROM units").pl()
    finally:
        con.close()
    hashed = frame.join(hashed.unique("unit"), on="unit", how="left", maintain_order="left")
    idx = np.searchsorted(edges, hashed["bucket"].to_numpy(), side="right").clip(0, len(variants) - 1)
    return hashed.with_columns(pl.Series("variant", np.asarray(variants, dtype=object)[idx], dtype=pl.String))


# ---------------------------------------------------------------------------------------------
# tests


def srm(counts: Sequence[int], weights: Sequence[float] | None = None, alpha: float = SRM_ALPHA) -> dict:
    """χ² test of observed units per variant against the planned split."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.asarray(weights if weights is not None else [1.0] * counts.size, dtype=np.float64)
    expected = counts.sum() * weights / weights.sum()
    chi2, p = stats.chisquare(counts, expected)
    return {"chi2": float(chi2), "p_value": float(p), "mismatch": bool(p < alpha),
            "observed": counts.astype(int).tolist(), "expected": expected.round(1).tolist()}


@dataclass(frozen=True)
class Comparison:
    metric: str
    control: float
    control_low: float
    control_high: float
    treatment: float
    treatment_low: float
    treatment_high: float
    diff: float
    diff_low: float
    diff_high: float
    relative: float
    p_value: float
    n_control: int
    n_treatment: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def compare_means(metric: str, control: np.ndarray, treatment: np.ndarray, alpha: float = ALPHA) -> Comparison:
    """Welch: means with t intervals, the difference with its interval and two-sided p-value."""
    c, t = np.asarray(control, np.float64), np.asarray(treatment, np.float64)
    mc, mt = c.mean(), t.mean()
    vc, vt = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    se = np.sqrt(vc + vt)
    dof = (vc + vt) ** 2 / (vc ** 2 / (c.size - 1) + vt ** 2 / (t.size - 1)) if se > 0 else np.inf
    diff = mt - mc
    tq = float(stats.t.ppf(1 - alpha / 2, dof)) if np.isfinite(dof) else _z(alpha)
    p = float(2 * stats.t.sf(abs(diff) / se, dof)) if se > 0 else (1.0 if diff == 0 else 0.0)
    hc, ht = _z(alpha) * np.sqrt(vc), _z(alpha) * np.sqrt(vt)
    return Comparison(metric, mc, mc - hc, mc + hc, mt, mt - ht, mt + ht, diff, diff - tq * se, diff + tq * se,
                      diff / mc if mc else float("nan"), p, c.size, t.size)


def _ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Ratio of sums and its delta-method variance."""
    n = num.size
    mx, my = den.mean(), num.mean()
    r = my / mx
    var = (np.var(num, ddof=1) - 2 * r * np.cov(num, den, ddof=1)[0, 1] + r ** 2 * np.var(den, ddof=1)) / (n * mx ** 2)
    return float(r), float(max(var, 0.0))


def compare_ratios(metric: str, num_c: np.ndarray, den_c: np.ndarray, num_t: np.ndarray, den_t: np.ndarray,
                   alpha: float = ALPHA) -> Comparison:
    """Σnum / Σden per variant (delta method over units), the difference and its p-value (normal)."""
    rc, vc = _ratio(np.asarray(num_c, np.float64), np.asarray(den_c, np.float64))
    rt, vt = _ratio(np.asarray(num_t, np.float64), np.asarray(den_t, np.float64))
    z = _z(alpha)
    se = np.sqrt(vc + vt)
    diff = rt - rc
    p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return Comparison(metric, rc, rc - z * np.sqrt(vc), rc + z * np.sqrt(vc), rt, rt - z * np.sqrt(vt),
                      rt + z * np.sqrt(vt), diff, diff - z * se, diff + z * se, diff / rc if rc else float("nan"), p,
                      np.asarray(num_c).size, np.asarray(num_t).size)


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """(adjusted y, θ) with θ = cov(x, y) / var(x) over all units of the experiment."""
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    vx = x.var(ddof=1)
    theta = float(np.cov(x, y, ddof=1)[0, 1] / vx) if vx > 0 else 0.0
    return y - theta * (x - x.mean()), theta


def compare_cuped(metric: str, y: np.ndarray, x: np.ndarray, is_treatment: np.ndarray,
                  alpha: float = ALPHA) -> tuple[Comparison, dict]:
    """The difference of CUPED-adjusted means, and how much variance the pre-period removed."""
    is_treatment = np.asarray(is_treatment, dtype=bool)
    adj, theta = cuped(y, x)
    comp = compare_means(f"{metric} (CUPED)", adj[~is_treatment], adj[is_treatment], alpha)
    raw = compare_means(metric, np.asarray(y)[~is_treatment], np.asarray(y)[is_treatment], alpha)
    raw_var = (raw.diff_high - raw.diff_low) ** 2
    adj_var = (comp.diff_high - comp.diff_low) ** 2
    return comp, {"theta": theta, "variance_reduction": float(1 - adj_var / raw_var) if raw_var > 0 else 0.0,
                  "correlation": float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else 0.0}


def guardrail(metric: str, control: np.ndarray, treatment: np.ndarray, alpha: float = ALPHA) -> dict:
    comp = compare_means(metric, control, treatment, alpha)
    return {**comp.as_dict(), "violated": bool(comp.diff < 0 and comp.p_value < alpha),
            "rule": f"fails when {metric} is significantly lower in the treatment (two-sided p < {alpha})"}


def analyse(users: pl.DataFrame, *, control: str = "control", treatment: str = "treatment",
            weights: Sequence[float] = (1.0, 1.0)) -> dict:
    """The whole read-out from one row per assigned user.

    Columns: variant, searches, clicks, searches_clicked, purchases, revenue, and pre-period
    pre_searches, pre_clicks, pre_purchases, pre_revenue.
    """
    counts = users.group_by("variant").len()
    n = {v: int(counts.filter(pl.col("variant") == v)["len"].sum()) for v in (control, treatment)}
    check = srm([n[control], n[treatment]], weights)
    c = users.filter(pl.col("variant") == control)
    t = users.filter(pl.col("variant") == treatment)
    active_c, active_t = c.filter(pl.col("searches") > 0), t.filter(pl.col("searches") > 0)
    metrics = [
        compare_ratios("click-through (searches with a click / searches)", active_c["searches_clicked"],
                       active_c["searches"], active_t["searches_clicked"], active_t["searches"]),
        compare_ratios("clicks per search", active_c["clicks"], active_c["searches"], active_t["clicks"],
                       active_t["searches"]),
        compare_means("conversion (users who bought / users)", (c["purchases"] > 0).cast(pl.Float64).to_numpy(),
                      (t["purchases"] > 0).cast(pl.Float64).to_numpy()),
    ]
    is_t = (users["variant"] == treatment).to_numpy()
    cuped_clicks, cuped_clicks_info = compare_cuped("clicks per user", users["clicks"].to_numpy(),
                                                    users["pre_clicks"].to_numpy(), is_t)
    cuped_conv, cuped_conv_info = compare_cuped("purchases per user", users["purchases"].to_numpy(),
                                                users["pre_purchases"].to_numpy(), is_t)
    raw_clicks = compare_means("clicks per user", users.filter(~pl.Series(is_t))["clicks"].to_numpy(),
                               users.filter(pl.Series(is_t))["clicks"].to_numpy())
    raw_purch = compare_means("purchases per user", users.filter(~pl.Series(is_t))["purchases"].to_numpy(),
                              users.filter(pl.Series(is_t))["purchases"].to_numpy())
    guard = guardrail("revenue per user", c["revenue"].to_numpy(), t["revenue"].to_numpy())
    return {"srm": check, "users": n, "metrics": [m.as_dict() for m in [*metrics, raw_clicks, raw_purch]],
            "cuped": [{**cuped_clicks.as_dict(), **cuped_clicks_info}, {**cuped_conv.as_dict(), **cuped_conv_info}],
            "guardrail": guard}
