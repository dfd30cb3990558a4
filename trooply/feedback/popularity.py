"""Popularity from feedback: engagement per impression, Bayesian-smoothed and decayed over time.

engagement  E_p = sum of event weights (click < add_to_cart < purchase), each halved every half-life and
                  divided by the examination propensity of the position it happened at (below)
impressions I_p = searches that returned p, decayed the same way (from the search log)
rate_p      = (E_p + k * mu) / (I_p + k), with mu the tenant's overall rate and k pseudo-impressions
signal_p    = rate_p / (rate_p + mu): 0.5 for an average product, towards 1 for a popular one.

Position bias: shoppers look at the top of a page far more than at its foot, so a click at position 9 says
more than one at position 0. The position-based examination model of Joachims et al. (2017) gives the
probability that position k (0-based) is looked at as theta_k = (1 / (k + 1)) ** eta, with eta
(TROOPLY_POPULARITY_POSITION_BIAS, default 1; 0 turns the correction off) saying how steeply attention falls.
Each event counts 1 / theta_k (inverse propensity weighting), capped at MAX_INVERSE_PROPENSITY so that one
stray click deep in a page cannot make a product popular on its own.

A periodic refresh writes the signal into SQL and into each changed product's index payload, so the
query path only reads a number.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from trooply.catalog.repository import CatalogRepository
from trooply.db import Database, utcnow
from trooply.feedback.repository import FeedbackMaintenance, FeedbackRepository
from trooply.spaces.live import LiveSpaces

log = logging.getLogger(__name__)
EVENT_WEIGHTS = {"click": 1.0, "add_to_cart": 3.0, "purchase": 8.0}
MAX_INVERSE_PROPENSITY = 20.0
PSEUDO_IMPRESSIONS = 20.0
MIN_CHANGE = 0.001


def examination_propensity(position: int, eta: float) -> float:
    """How likely a shopper is to look at a result at this 0-based position: 1 at the top, falling with depth."""
    return (1.0 / (max(position, 0) + 1)) ** eta


def popularity_signals(events: Iterable[tuple[str, str, datetime, int]],
                       impressions: Iterable[tuple[list[str], datetime]], now: datetime, half_life: timedelta,
                       position_bias: float = 1.0) -> dict[str, float]:
    """`events` are (product id, event, when, position); `position_bias` is the propensity model's eta."""
    engagement: dict[str, float] = defaultdict(float)
    shown: dict[str, float] = defaultdict(float)
    for product_id, event, at, position in events:
        unbiased = min(MAX_INVERSE_PROPENSITY, 1.0 / examination_propensity(position, position_bias))
        engagement[product_id] += EVENT_WEIGHTS[event] * unbiased * _decay(now - at, half_life)
    for product_ids, at in impressions:
        for product_id in product_ids:
            shown[product_id] += _decay(now - at, half_life)
    total_shown = sum(shown.values())
    if not engagement or total_shown <= 0:
        return {}
    mean_rate = sum(engagement.values()) / total_shown
    signals = {}
    for product_id in set(engagement) | set(shown):
        rate = (engagement[product_id] + PSEUDO_IMPRESSIONS * mean_rate) / (shown[product_id] + PSEUDO_IMPRESSIONS)
        signals[product_id] = round(rate / (rate + mean_rate), 4)
    return signals


def _decay(age: timedelta, half_life: timedelta) -> float:
    return 0.5 ** (max(age.total_seconds(), 0.0) / half_life.total_seconds())


class PopularityService:
    def __init__(self, db: Database, spaces: LiveSpaces, half_life_days: float,
                 position_bias: float = 1.0) -> None:
        self.db = db
        self.spaces = spaces
        self.half_life = timedelta(days=half_life_days)
        self.position_bias = position_bias

    def refresh_all(self) -> int:
        """Refresh every tenant with feedback inside the window; returns how many products changed."""
        since = utcnow() - 8 * self.half_life  # older events weigh under 0.4%
        with self.db.session() as session:
            tenants = FeedbackMaintenance(session).tenants_with_feedback_since(since)
        return sum(self.refresh(tenant_id) for tenant_id in tenants)

    def refresh(self, tenant_id: str) -> int:
        now = utcnow()
        since = now - 8 * self.half_life
        with self.db.session() as session:
            feedback = FeedbackRepository(session, tenant_id)
            signals = popularity_signals(feedback.events_since(since), feedback.impressions_since(since), now,
                                         self.half_life, self.position_bias)
            changed = []
            for product in CatalogRepository(session, tenant_id).all_products():
                value = signals.get(product.id, 0.5 if signals else None)
                if value is None or (product.popularity is not None and abs(product.popularity - value) < MIN_CHANGE):
                    continue
                product.popularity = value
                changed.append((product.id, value))
        index = self.spaces
        for product_id, value in changed:
            index.set_payload(tenant_id, product_id, {"popularity": value})
        if changed:
            log.info("popularity refreshed for %d products of tenant %s", len(changed), tenant_id)
        return len(changed)
