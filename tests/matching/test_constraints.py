"""Every hard constraint of the matcher, one by one, each with the reason it gives when it
leaves nobody — checked on both the one-by-one path (core.candidates, which the console's
list and the greedy baseline use) and the batch assignment (batch.decide_batch), which must
agree."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dispatch.matching.batch import decide_batch
from dispatch.matching.core import WAIT, Decision, Holding, ProviderInfo, RequestInfo, Usage, candidates
from dispatch.matching.scoring import Weights
from tests.matching.factories import caregiver, held, meal, provider, request


def decide(r: RequestInfo, providers: Sequence[ProviderInfo], holdings: Sequence[Holding] = ()) -> Decision:
    """The batch's decision for one request, checked against the one-by-one path."""
    (d,) = decide_batch([r], providers, holdings, Weights())
    found, reason = candidates(r, providers, Usage({p.id: p for p in providers}, holdings), Weights())
    assert d.provider_id == (found[0].provider.id if found else None)
    assert d.reason == reason
    if found:
        assert d.score == found[0].score and d.score_parts == found[0].parts
        assert d.caregiver_id == found[0].caregiver_id
    return d


class TestKind:
    def test_only_providers_of_the_kind_serve(self) -> None:
        day_care = provider("day_care", north_km=0.2, skills=())
        home = provider("home_care", north_km=3.0)
        assert decide(request("home_care"), [day_care, home]).provider_id == home.id
        assert decide(request("day_care"), [home]).reason == "no_provider_in_range"

    def test_a_delivered_meal_falls_through_from_a_canteen_that_cannot_deliver_to_home_care(self) -> None:
        canteen = provider("canteen", north_km=0.5, skills=(), capacity=50)
        home = provider("home_care", north_km=4.0, skills=("meal_delivery",))
        assert decide(meal(delivery=True), [canteen, home]).provider_id == home.id
        assert decide(meal(delivery=False), [canteen, home]).provider_id == canteen.id

    def test_a_delivering_canteen_is_preferred_by_the_fallback_penalty(self) -> None:
        canteen = provider("canteen", north_km=3.0, skills=("meal_delivery",), capacity=50)
        home = provider("home_care", north_km=1.5, skills=("meal_delivery",))
        d = decide(meal(delivery=True), [canteen, home])
        assert d.provider_id == canteen.id  # 1.5 km nearer is less than the 2 km fallback penalty
        home_near = provider("home_care", north_km=0.1, skills=("meal_delivery",))
        d = decide(meal(delivery=True), [canteen, home_near])
        assert d.provider_id == home_near.id and d.score_parts["fallback_km"] == 2.0


class TestRange:
    def test_beyond_the_service_radius_is_never_offered(self) -> None:
        far = provider(north_km=9.0, radius=8.0)
        assert decide(request(), [far]).reason == "no_provider_in_range"
        inside = provider(north_km=7.9, radius=8.0)
        assert decide(request(), [far, inside]).provider_id == inside.id


class TestExclusions:
    def test_a_provider_the_elder_refused_is_never_offered(self) -> None:
        refused, other = provider(north_km=0.5), provider(north_km=6.0)
        r = request(refused=frozenset({refused.id}))
        assert decide(r, [refused, other]).provider_id == other.id
        assert decide(r, [refused]).reason == "all_refused"

    def test_a_provider_that_declined_this_request_is_not_offered_it_again(self) -> None:
        declined, other = provider(north_km=0.5), provider(north_km=6.0)
        r = request(excluded=frozenset({declined.id}))
        assert decide(r, [declined, other]).provider_id == other.id
        assert decide(r, [declined]).reason == "all_declined"


class TestOpen:
    def test_closed_in_the_window_is_not_offered(self) -> None:
        day_only = provider(hours=("07:00", "20:00"))
        assert decide(request(start=21.0), [day_only]).reason == "none_open"
        assert decide(request(start=19.0), [day_only]).provider_id == day_only.id  # overlaps 19-20

    def test_the_caregivers_shift_counts_for_home_care(self) -> None:
        night = caregiver("cleaning", shift=("20:00", "24:00"))
        p = provider(caregivers=(night,))
        assert decide(request(start=9.0, skills=("cleaning",)), [p]).reason == "none_open"
        d = decide(request(start=21.0, skills=("cleaning",)), [p])
        assert (d.provider_id, d.caregiver_id) == (p.id, night.id)


class TestSkills:
    def test_provider_skills_must_cover_the_request(self) -> None:
        p = provider(skills=("cleaning",))
        assert decide(request(skills=("bathing",)), [p]).reason == "no_skilled_provider"
        assert decide(request(skills=("cleaning",)), [p]).provider_id == p.id

    def test_one_caregiver_must_have_every_skill(self) -> None:
        a, b = caregiver("bathing"), caregiver("nursing")
        p = provider(caregivers=(a, b))
        assert decide(request(skills=("bathing", "nursing")), [p]).reason == "no_skilled_provider"
        both = caregiver("bathing", "nursing")
        p2 = provider(caregivers=(a, b, both))
        assert decide(request(skills=("bathing", "nursing")), [p2]).caregiver_id == both.id


class TestCapacity:
    def test_home_care_counts_jobs_at_once_and_pending_offers(self) -> None:
        p = provider(capacity=2)
        old = request()
        holdings = [held(p, old, "assigned"), held(p, old, "pending")]
        assert decide(request(), [p], holdings).reason == WAIT  # a pending offer may come free
        done = [held(p, old, "assigned"), held(p, old, "in_service")]
        assert decide(request(), [p], done).reason == "all_full"
        finished = [held(p, old, "completed"), held(p, old, "completed")]
        assert decide(request(), [p], finished).provider_id == p.id  # jobs at once: done ones free

    def test_day_care_counts_seats_per_day(self) -> None:
        p = provider("day_care", capacity=1, skills=())
        monday = request("day_care", start=8.0, hours=9.0)
        assert (
            decide(request("day_care", start=8.0, hours=9.0), [p], [held(p, monday, "completed")]).reason
            == "all_full"
        )
        tuesday = request("day_care", start=8.0, hours=9.0, day=1)
        assert decide(tuesday, [p], [held(p, monday, "completed")]).provider_id == p.id

    def test_canteens_count_meals_per_slot(self) -> None:
        p = provider("canteen", capacity=1, skills=())
        lunch = meal("lunch")
        assert decide(meal("lunch"), [p], [held(p, lunch)]).reason == "all_full"
        assert decide(meal("dinner"), [p], [held(p, lunch)]).provider_id == p.id

    def test_each_caregiver_has_jobs_at_once(self) -> None:
        a = caregiver("cleaning", max_jobs=1)
        b = caregiver("cleaning", max_jobs=1)
        p = provider(capacity=10, caregivers=(a, b))
        old = request()
        busy_a = [held(p, old, "assigned", a.id)]
        assert decide(request(skills=("cleaning",)), [p], busy_a).caregiver_id == b.id
        both = [*busy_a, held(p, old, "assigned", b.id)]
        assert decide(request(skills=("cleaning",)), [p], both).reason == "all_full"

    def test_a_batch_never_gives_more_units_than_are_left(self) -> None:
        p = provider(capacity=3)
        rs = [request() for _ in range(5)]
        decisions = decide_batch(rs, [p], [], Weights())
        assert sum(1 for d in decisions if d.provider_id == p.id) == 3
        assert sorted(d.reason or "" for d in decisions if d.provider_id is None) == [WAIT, WAIT]


class TestReasons:
    @pytest.mark.parametrize(
        ("req", "reason"),
        [
            (request("day_care"), "no_provider_in_range"),
            (request(skills=("rehab",)), "no_skilled_provider"),
            (request(start=3.0), "none_open"),
        ],
    )
    def test_the_furthest_stage_names_the_reason(self, req: RequestInfo, reason: str) -> None:
        providers = [
            provider(skills=("cleaning",), hours=("07:00", "20:00")),
            provider(skills=("cleaning", "rehab"), north_km=30.0, radius=10.0),  # out of range
        ]
        assert decide(req, providers).reason == reason
