"""The score of a feasible (request, provider) pair: lower is better, in kilometre-equivalents,
so that an operator can read every part as "worth this many km of travel".

Parts (each stored on the offer, so an operator can see why a provider was chosen):
- `distance_km`: travel between the elder and the provider, times the distance weight;
- `fallback_km`: a delivered meal from a home-care provider instead of a canteen;
- `load`: how full the provider is once it takes this job (0..1), times the load weight, so
  work spreads before a provider is filled to the brim;
- `acceptance`, `completion`, `rating`, `no_shows`: the provider's record (see ProviderRecord);
- `continuity`: a bonus (negative) for the provider, or caregiver, that served this elder before;
- `capacity_price`: what this unit of capacity is expected to be worth to later requests
  (dispatch/matching/prices.py), only when prices are in use.

Pure: no I/O, so the worker, the console's candidate list and the benchmark score alike.
"""

from __future__ import annotations

from dataclasses import dataclass

# Priors for a provider with no history yet, and how many observations they weigh: a new
# provider is neither punished nor favoured until its record speaks.
PRIOR_ACCEPTANCE = 0.9
PRIOR_COMPLETION = 0.95
PRIOR_RATING = 4.0
PRIOR_WEIGHT = 5.0
MAX_NO_SHOWS_COUNTED = 5


@dataclass(frozen=True)
class Weights:
    """Score weights (settings `MATCH_WEIGHT_*`), each in km-equivalents."""

    distance: float = 1.0  # per km travelled
    load: float = 1.0  # for a provider filled to capacity by this job
    acceptance: float = 2.0  # for a provider that never accepts
    completion: float = 3.0  # for a provider that never completes an accepted job
    rating: float = 2.0  # for an average rating of 1 (against 5)
    no_show: float = 1.5  # per recent no-show (at most MAX_NO_SHOWS_COUNTED counted)
    continuity: float = 1.0  # bonus for the provider (or caregiver) who served this elder before
    fallback_km: float = 2.0  # a delivered meal from home care instead of a canteen


# The benchmark's baseline (a): nearest feasible provider, nothing else considered.
NEAREST = Weights(load=0.0, acceptance=0.0, completion=0.0, rating=0.0, no_show=0.0, continuity=0.0)


@dataclass(frozen=True)
class ProviderRecord:
    """A provider's record, smoothed towards the priors (see dispatch/matching/records.py for
    what is counted and over which period)."""

    acceptance_rate: float = PRIOR_ACCEPTANCE
    completion_rate: float = PRIOR_COMPLETION
    rating: float = PRIOR_RATING
    no_shows: int = 0


def smoothed(successes: float, trials: float, prior: float, weight: float = PRIOR_WEIGHT) -> float:
    """A rate that starts at `prior` and moves towards successes/trials as trials accumulate."""
    return (successes + prior * weight) / (trials + weight)


def record_parts(record: ProviderRecord, weights: Weights) -> dict[str, float]:
    """The parts of the score that depend on the provider alone."""
    return {
        "acceptance": weights.acceptance * (1.0 - _clamp(record.acceptance_rate)),
        "completion": weights.completion * (1.0 - _clamp(record.completion_rate)),
        "rating": weights.rating * (5.0 - min(max(record.rating, 1.0), 5.0)) / 4.0,
        "no_shows": weights.no_show * min(record.no_shows, MAX_NO_SHOWS_COUNTED),
    }


def record_cost(record: ProviderRecord, weights: Weights) -> float:
    return sum(record_parts(record, weights).values())


def load_part(weights: Weights, used_after: int, capacity: int) -> float:
    """Load once this job is taken: convex in the units used, so spreading is preferred."""
    return weights.load * used_after / capacity if capacity > 0 else weights.load


def pair_parts(
    *,
    weights: Weights,
    distance_km: float,
    fallback: bool,
    record: ProviderRecord,
    used_after: int,
    capacity: int,
    continuity: bool,
    price: float = 0.0,
    record_cached: dict[str, float] | None = None,
) -> dict[str, float]:
    """Every part of one pair's score, rounded for display; the score is their sum.
    `record_cached`: the provider's record parts, already rounded (the batch computes them once)."""
    parts = {
        "distance_km": round(weights.distance * distance_km, 3),
        "fallback_km": weights.fallback_km if fallback else 0.0,
        "load": round(load_part(weights, used_after, capacity), 3),
    }
    if record_cached is None:
        record_cached = {k: round(v, 3) for k, v in record_parts(record, weights).items()}
    parts.update(record_cached)
    parts["continuity"] = -weights.continuity if continuity else 0.0
    if price:
        parts["capacity_price"] = round(price, 3)
    return parts


def total(parts: dict[str, float]) -> float:
    return round(sum(parts.values()), 3)


def _clamp(rate: float) -> float:
    return min(max(rate, 0.0), 1.0)
