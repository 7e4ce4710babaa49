"""Every tunable of the integration stage in one frozen object, with its stated default.

The defaults are decisions, not accidents; each one is explained where it is declared. A config's
``fingerprint`` is recorded with every incremental snapshot, so changing a coefficient forces a
full recompute instead of silently mixing old and new definitions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date

#: The four behaviour event types, in funnel order.
EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")

#: Column name of each event type's count in the integrated tables.
COUNT_COLUMNS: dict[str, str] = {
    "view": "views",
    "click": "clicks",
    "add_to_cart": "add_to_carts",
    "purchase": "purchases",
}

#: Implicit-feedback coefficients: a purchase says far more about preference than a view. Roughly
#: the inverse of the funnel's step-to-step rates (about 1 in 3 views is clicked, 1 in 5 clicks is
#: carted, half of the carts are bought), so each step of the funnel carries similar total weight.
DEFAULT_WEIGHTS: dict[str, float] = {"view": 1.0, "click": 3.0, "add_to_cart": 5.0, "purchase": 10.0}

#: Secret mixed into the pseudonymous user key; without it the key cannot be linked back to an id. A
#: deployment sets its own (governance.settings: GOVERNANCE_PSEUDONYM_KEY, refused when missing outside
#: the demo); a bare IntegrationConfig() — tests, notebooks — keys with this public demo constant.
DEMO_PSEUDONYM_SECRET = "governance-integration-v1"


@dataclass(frozen=True)
class IntegrationConfig:
    #: implicit-feedback coefficient per event type (see DEFAULT_WEIGHTS)
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    #: optional exponential time decay of the interaction weight: the weight halves every
    #: ``half_life_days`` days before ``decay_as_of``. None: no decay (``weight_decayed`` is null).
    half_life_days: float | None = None
    #: the day decay is measured from; None: the UTC day the table is built (recorded per row)
    decay_as_of: date | None = None

    #: a purchase price "differs" from the catalog price valid at that time when it is off by more
    #: than this fraction of the catalog price AND by more than ``price_tolerance_abs`` USD
    #: (2 %: rounding and currency conversion at fixed rates stay well inside it)
    price_tolerance_rel: float = 0.02
    price_tolerance_abs: float = 0.01

    #: a session lasting longer than this is "impossible" for one shopper (bots, shared devices,
    #: broken session ids); the storefront closes a session after 30 minutes of inactivity
    max_session_hours: float = 12.0

    #: user identity: records of *different* source systems with the same normalised e-mail are
    #: one person. Within one system two ids with one e-mail stay two users (shared family
    #: addresses are common; the source system's own key is trusted there).
    merge_users_by_email: bool = True

    #: how many top categories / brands a user profile lists
    top_n: int = 3
    #: which category level a profile's top categories are counted at (1 = top level)
    top_category_level: int = 2

    #: catalog findings (model-backed): a product is "miscategorised" when its text is closer to
    #: another category's centroid than to its own by at least this cosine margin. On the generated
    #: shop, correctly placed products score at most ~0.03 and miscategorised ones at least ~0.25.
    miscategorised_margin: float = 0.10
    #: ... at this level of the category tree (1 = top level); categories with fewer products than
    #: ``min_category_size`` get no centroid of their own (their products are not judged)
    miscategorised_level: int = 1
    min_category_size: int = 5
    #: probable duplicates: same canonical brand and leaf category, cosine similarity of the text
    #: embeddings at or above ``duplicate_similarity`` and (unless None) current prices within
    #: ``duplicate_price_tolerance`` of each other. Many genuinely different products of one brand
    #: and leaf differ only in a colour or edition word and score 0.90-0.95; a re-listed product
    #: keeps its price, which is what separates the two.
    duplicate_similarity: float = 0.92
    duplicate_price_tolerance: float | None = 0.02
    #: sentence-transformers batch size for the encoder (CPU)
    embedding_batch_size: int = 64

    #: secret for pseudonymous keys; None: the public demo constant (the settings never leave it None)
    pseudonym_secret: str | None = None

    def __post_init__(self) -> None:
        weights = {**DEFAULT_WEIGHTS, **(self.weights or {})}
        unknown = set(weights) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"weights for unknown event types {sorted(unknown)}; known: {EVENT_TYPES}")
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"interaction weights must be >= 0, got {weights}")
        object.__setattr__(self, "weights", weights)
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ValueError("half_life_days must be positive (or None for no decay)")
        if self.top_category_level not in (1, 2, 3) or self.miscategorised_level not in (1, 2, 3):
            raise ValueError("category levels are 1, 2 or 3")

    @property
    def secret(self) -> bytes:
        return (self.pseudonym_secret or DEMO_PSEUDONYM_SECRET).encode()

    def with_(self, **changes) -> IntegrationConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["decay_as_of"] = self.decay_as_of.isoformat() if self.decay_as_of else None
        d.pop("pseudonym_secret")
        return d

    def fingerprint(self) -> str:
        """Hash of everything that shapes the tables (the secret included, never its value)."""
        payload = json.dumps({**self.as_dict(), "secret": hashlib.sha256(self.secret).hexdigest()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


DEFAULT_CONFIG = IntegrationConfig()
