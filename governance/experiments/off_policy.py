"""Off-policy evaluation: a new policy's expected reward estimated from another policy's logs.

A log row i has a context, the action the logging policy π0 took with its propensity
``p_i = π0(a_i | x_i)``, and the reward ``r_i`` (a click). For an evaluation policy π_e with
``w_i = π_e(a_i | x_i) / p_i``:

* IPS (inverse propensity scoring): ``V = mean(w_i r_i)`` — unbiased when p_i > 0 wherever π_e acts;
* SNIPS (self-normalised IPS): ``V = Σ w_i r_i / Σ w_i`` — a little biased, far less variance;
* DM (direct method): ``V = mean_i Σ_a π_e(a | x_i) q̂(x_i, a)`` with a reward model q̂;
* DR (doubly robust): ``V = DM + mean(w_i (r_i − q̂(x_i, a_i)))`` — unbiased if either the
  propensities or the reward model are right.

Confidence intervals are percentile bootstraps over logged units. Given a ``refit`` callback, DM's
and DR's resamples *refit the reward model* on each resample (as a weighted fit: a unit drawn k
times weighs k), so their intervals include the model's own estimation error; without one the
model is held fixed and DM's interval shows only the sampling noise of the contexts. The Open Bandit
Pipeline implements the same estimators; it pins Python < 3.11, so they are written out here and
tested against the formulas on data whose answer is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

ESTIMATORS = ("IPS", "SNIPS", "DM", "DR")


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"estimator": self.estimator, "value": self.value, "ci_low": self.low, "ci_high": self.high}


def ips(reward: np.ndarray, weight: np.ndarray) -> float:
    return float(np.mean(weight * reward))


def snips(reward: np.ndarray, weight: np.ndarray) -> float:
    total = float(np.sum(weight))
    return float(np.sum(weight * reward) / total) if total > 0 else float("nan")


def dm(q_target: np.ndarray) -> float:
    """``q_target[i] = Σ_a π_e(a | x_i) q̂(x_i, a)``."""
    return float(np.mean(q_target))


def dr(reward: np.ndarray, weight: np.ndarray, q_logged: np.ndarray, q_target: np.ndarray) -> float:
    return float(np.mean(q_target + weight * (reward - q_logged)))


def _per_row(name: str, reward, weight, q_logged, q_target):
    """Each estimator as (numerator terms, denominator terms): value = Σ num / Σ den, so one
    bootstrap resample is one weighted sum."""
    if name == "IPS":
        return weight * reward, np.ones_like(reward)
    if name == "SNIPS":
        return weight * reward, weight
    if name == "DM":
        return q_target, np.ones_like(reward)
    if name == "DR":
        return q_target + weight * (reward - q_logged), np.ones_like(reward)
    raise ValueError(f"unknown estimator {name!r}; known: {ESTIMATORS}")


#: a reward-model refit: per-unit sample weights (bootstrap counts) → (q_logged, q_target)
Refit = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def estimate(reward: np.ndarray, weight: np.ndarray, q_logged: np.ndarray | None = None,
             q_target: np.ndarray | None = None, *, estimators=ESTIMATORS, n_boot: int = 1000,
             alpha: float = 0.05, seed: int = 0, refit: Refit | None = None,
             n_refit: int | None = None) -> list[Estimate]:
    """Point estimates with percentile bootstrap intervals (units resampled with replacement).

    Arrays are one value per logged unit, or ``(units, slots)`` for a ranked list whose value is
    the sum over its slots (expected clicks per search): each slot is estimated on its own — SNIPS
    normalises within the slot — and the slots are summed; the bootstrap resamples whole units
    (searches), so slots of one search stay together.

    ``refit(counts)``, where given, refits the reward model with each unit weighted by how often
    the resample drew it and returns the new ``(q_logged, q_target)``; DM and DR then take their
    intervals from ``n_refit`` (default ``n_boot``; 0: the model held fixed) such resamples — the
    first ``n_refit`` of the same draws the other estimators use.
    """
    reward = np.asarray(reward, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    shape = (reward.shape[0], -1)
    reward, weight = reward.reshape(shape), weight.reshape(shape)
    if q_logged is not None and q_target is not None:
        q_logged = np.asarray(q_logged, np.float64).reshape(shape)
        q_target = np.asarray(q_target, np.float64).reshape(shape)
    else:
        estimators = [e for e in estimators if e in ("IPS", "SNIPS")]
    n = reward.shape[0]
    rng = np.random.default_rng(seed)
    # counts[b, i] = how often unit i is drawn in resample b (a multinomial draw per resample)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64) if n else np.zeros((n_boot, 0))
    refitted = None
    n_refit = n_boot if n_refit is None else min(n_refit, n_boot)
    if refit is not None and n_refit > 0 and any(e in ("DM", "DR") for e in estimators):
        refitted = [tuple(np.asarray(q, np.float64).reshape(shape) for q in refit(counts[b]))
                    for b in range(n_refit)]
    out = []
    for name in estimators:
        num, den = _per_row(name, reward, weight, q_logged, q_target)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(num.sum(0) / den.sum(0)))
            if refitted is not None and name in ("DM", "DR"):
                boot = np.array([np.sum((c @ nb) / (c @ db)) for c, (nb, db) in
                                 zip(counts, (_per_row(name, reward, weight, ql, qt) for ql, qt in refitted),
                                     strict=False)])
            else:
                boot = ((counts @ num) / (counts @ den)).sum(axis=1)
        boot = boot[np.isfinite(boot)]
        low, high = (np.quantile(boot, [alpha / 2, 1 - alpha / 2]) if boot.size else (np.nan, np.nan))
        out.append(Estimate(name, value, float(low), float(high)))
    return out


# ---------------------------------------------------------------------------------------------
# a reward model for DM / DR


def fit_reward_model(features: np.ndarray, reward: np.ndarray, *, c: float = 1.0,
                     sample_weight: np.ndarray | None = None):
    """L2 logistic regression q̂(x, a) = P(reward | features of (x, a)); a constant when one class only.

    ``sample_weight`` (a bootstrap's draw counts) weighs each row; rows weighing 0 are left out."""
    reward = np.asarray(reward).astype(int)
    if sample_weight is not None:
        keep = np.asarray(sample_weight) > 0
        features, reward, sample_weight = np.asarray(features)[keep], reward[keep], np.asarray(sample_weight)[keep]
    if reward.size == 0 or reward.min() == reward.max():
        const = float(np.average(reward, weights=sample_weight)) if reward.size else 0.0
        return lambda f: np.full(np.asarray(f).shape[0], const)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    model = LogisticRegression(C=c, max_iter=1000)
    # one BLAS thread: on a loaded machine the pool's threads spin (1.5 s per fit on the Open Bandit
    # sample against 0.04 s on one thread, measured here at load 11) — and the bootstrap fits hundreds
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(features, reward, sample_weight=sample_weight)

    def predict(f: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=1, user_api="blas"):
            return model.predict_proba(f)[:, 1]

    predict.model = model
    return predict


# ---------------------------------------------------------------------------------------------
# validation on the Open Bandit Dataset sample (ZOZOTOWN)

#: the Open Bandit Pipeline's own example on this sample (relative error of the estimate of the
#: Bernoulli-TS policy's CTR from the random policy's log, campaign "all")
OBP_RELATIVE_ERRORS = {"DM": 0.157, "IPS": 0.311, "DR": 0.293}
#: bootstrap resamples on which DM's and DR's reward model is refitted (one logistic fit each)
N_REFIT = 200


def read_open_bandit(root: Path, policy: str, campaign: str = "all") -> pl.DataFrame:
    path = Path(root) / policy / campaign / f"{campaign}.csv"
    frame = pl.read_csv(path)
    return frame.rename({frame.columns[0]: "row"}) if frame.columns[0] in ("", "column_0") else frame


def open_bandit_validation(root: Path, campaign: str = "all", *, n_boot: int = 1000, seed: int = 0,
                           n_refit: int = N_REFIT) -> dict:
    """Estimate Bernoulli TS's CTR from the uniform-random policy's log and compare with BTS's own.

    The evaluation policy π_e(item | position) is Bernoulli TS's action distribution, read from
    the propensities it logged (the mean propensity of each item at each position in the BTS log,
    normalised per position); the logging policy's propensity is the random log's own column
    (1/80). The reward model for DM/DR is a logistic regression of click on item, position and
    the user features (one-hot), fitted on the random log — and refitted on each of ``n_refit``
    bootstrap resamples for DM's and DR's intervals.
    """
    rand = read_open_bandit(root, "random", campaign)
    bts = read_open_bandit(root, "bts", campaign)
    truth = float(bts["click"].mean())
    items = np.sort(rand["item_id"].unique().to_numpy())
    positions = np.sort(rand["position"].unique().to_numpy())
    pi = (bts.group_by("item_id", "position").agg(pl.col("propensity_score").mean().alias("p")))
    grid = pl.DataFrame({"item_id": np.repeat(items, positions.size), "position": np.tile(positions, items.size)})
    pi = (grid.join(pi, on=["item_id", "position"], how="left").with_columns(pl.col("p").fill_null(0.0))
          .with_columns((pl.col("p") / pl.col("p").sum().over("position")).alias("pi_e")))
    log = rand.join(pi.select("item_id", "position", "pi_e"), on=["item_id", "position"], how="left")
    weight = (log["pi_e"] / log["propensity_score"]).to_numpy()
    reward = log["click"].to_numpy().astype(np.float64)

    user_cols = [c for c in rand.columns if c.startswith("user_feature")]
    users = rand.select(user_cols).to_dummies() if user_cols else pl.DataFrame()
    n = rand.height

    def features(item: np.ndarray, position: np.ndarray) -> np.ndarray:
        onehot_item = (item[:, None] == items[None, :]).astype(np.float32)
        onehot_pos = (position[:, None] == positions[None, :]).astype(np.float32)
        return np.hstack([onehot_item, onehot_pos, users.to_numpy().astype(np.float32)])

    pos = rand["position"].to_numpy()
    x_log = features(rand["item_id"].to_numpy(), pos)
    pi_mat = (pi.pivot(on="item_id", index="position", values="pi_e").sort("position")
              .select([str(i) for i in items]).to_numpy())  # positions × items
    pi_row = pi_mat[np.searchsorted(positions, pos)]  # π_e(item | the row's position), n × items

    def q_values(sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(q̂ of the logged actions, Σ_a π_e(a | x_i) q̂(x_i, a)) from a model fitted with these weights.

        The model is linear in one-hot item, position and user features, so the logit of every
        item at row i is the row's logit without its item term plus that item's coefficient."""
        model = fit_reward_model(x_log, reward, sample_weight=sample_weight)
        q_logged = model(x_log)
        lr = getattr(model, "model", None)
        if lr is None:  # one class only: a constant model
            return q_logged, q_logged.copy()
        coef = lr.coef_[0]
        base = x_log[:, items.size:] @ coef[items.size:] + lr.intercept_[0]
        q_items = 1.0 / (1.0 + np.exp(-(base[:, None] + coef[None, :items.size])))
        return q_logged, (pi_row * q_items).sum(axis=1)

    q_logged, q_target = q_values()
    results = estimate(reward, weight, q_logged, q_target, n_boot=n_boot, seed=seed,
                       refit=lambda counts: q_values(counts), n_refit=n_refit)
    rows = [{**e.as_dict(), "relative_error": abs(e.value - truth) / truth,
             "obp_relative_error": OBP_RELATIVE_ERRORS.get(e.estimator)} for e in results]
    return {"campaign": campaign, "logged_ctr_random": float(rand["click"].mean()), "on_policy_ctr_bts": truth,
            "rows": n, "estimates": pl.DataFrame(rows),
            "max_weight": float(weight.max()), "mean_weight": float(weight.mean())}
