"""The batch assignment and the score: placing requests together beats one by one, urgent
ones come first, the score's parts explain it, and capacity prices steer requests away from
a unit someone else will need."""

from __future__ import annotations

from dataclasses import replace

from dispatch.matching.arrays import providers_for
from dispatch.matching.batch import decide_batch
from dispatch.matching.core import WAIT, Decision, Usage, capacity_key, decide_greedy
from dispatch.matching.prices import aggregate, capacity_prices
from dispatch.matching.scoring import NEAREST, ProviderRecord, Weights, total
from tests.matching.factories import caregiver, held, provider, request


def placed(decisions: list[Decision]) -> dict[int, int | None]:
    return {d.request_id: d.provider_id for d in decisions}


class TestAssignment:
    def test_together_beats_one_by_one(self) -> None:
        # One job each at P1 (1 km north) and P2 (2 km south). A (at home, first) is 1 km from P1
        # and 2 km from P2; B (2.5 km north) is 1.5 km from P1 and 4.5 km from P2.
        p1 = provider(north_km=1.0, capacity=1)
        p2 = provider(north_km=-2.0, capacity=1)
        a = request(north_km=0.0)  # first in: 1 km to p1, 2 km to p2
        b = request(north_km=2.5)  # 1.5 km to p1, 4.5 km to p2
        greedy = decide_greedy([a, b], [p1, p2], [], NEAREST)
        assert placed(greedy) == {a.id: p1.id, b.id: p2.id}  # 1 + 4.5 = 5.5 km
        batch = decide_batch([a, b], [p1, p2], [], NEAREST)
        assert placed(batch) == {a.id: p2.id, b.id: p1.id}  # 2 + 1.5 = 3.5 km
        assert sum(d.distance_km or 0 for d in batch) < sum(d.distance_km or 0 for d in greedy)

    def test_as_many_as_possible_are_placed(self) -> None:
        # Greedy gives the only provider B can reach to A, who had another choice.
        near_both = provider(north_km=4.0, capacity=1, radius=5.0)
        only_a = provider(north_km=-4.0, capacity=1, radius=5.0)
        a2 = request(north_km=0.5)  # 3.5 km to near_both, 4.5 km to only_a; filed first
        b = request(north_km=8.0)  # reaches near_both only
        greedy = decide_greedy([a2, b], [near_both, only_a], [], NEAREST)
        batch = decide_batch([a2, b], [near_both, only_a], [], NEAREST)
        assert sum(d.provider_id is not None for d in greedy) == 1
        assert placed(batch) == {a2.id: only_a.id, b.id: near_both.id}

    def test_urgent_requests_are_placed_first_on_scarce_capacity(self) -> None:
        p = provider(capacity=1)
        normal = request(north_km=0.0)
        urgent = request(north_km=3.0, priority="urgent")  # filed later, farther: still first
        decisions = decide_batch([normal, urgent], [p], [], Weights())
        assert decisions[0].request_id == urgent.id and decisions[0].provider_id == p.id
        assert placed(decisions)[normal.id] is None

    def test_load_spreads_work_before_filling_one_provider(self) -> None:
        a, b = provider(north_km=1.0, capacity=4), provider(north_km=1.3, capacity=4)
        rs = [request() for _ in range(4)]
        spread = placed(decide_batch(rs, [a, b], [], Weights(load=2.0)))
        assert sorted(spread.values()).count(a.id) == 2  # the 0.3 km is worth less than the load
        filled = placed(decide_batch(rs, [a, b], [], NEAREST))
        assert list(filled.values()).count(a.id) == 4

    def test_caregivers_within_one_batch_are_not_overbooked(self) -> None:
        cg = caregiver("cleaning", max_jobs=2)
        p = provider(capacity=10, caregivers=(cg,))
        decisions = decide_batch([request(skills=("cleaning",)) for _ in range(3)], [p], [], Weights())
        assert [d.caregiver_id for d in decisions].count(cg.id) == 2
        # Both of the caregiver's jobs are offers still pending: the third request waits for them.
        assert [d.reason for d in decisions if d.provider_id is None] == [WAIT]
        accepted = [held(p, request(), "assigned", cg.id), held(p, request(), "assigned", cg.id)]
        (d,) = decide_batch([request(skills=("cleaning",))], [p], accepted, Weights())
        assert d.reason == "all_full"

    def test_every_request_gets_exactly_one_decision(self) -> None:
        providers = [provider(north_km=k, capacity=2) for k in range(5)]
        rs = [request(north_km=k % 7) for k in range(40)]
        decisions = decide_batch(rs, providers, [], Weights())
        assert sorted(d.request_id for d in decisions) == sorted(r.id for r in rs)


class TestScore:
    def test_the_score_is_the_sum_of_its_parts(self) -> None:
        p = provider(
            north_km=2.0,
            record=ProviderRecord(acceptance_rate=0.5, completion_rate=0.8, rating=3.0, no_shows=2),
        )
        (d,) = decide_batch([request()], [p], [], Weights())
        assert d.score == total(d.score_parts)
        assert d.score_parts["acceptance"] == 1.0  # 2.0 x (1 - 0.5)
        assert d.score_parts["no_shows"] == 3.0  # 1.5 per no-show
        assert abs(d.score_parts["distance_km"] - 2.0) < 0.01

    def test_a_better_record_wins_over_a_little_distance(self) -> None:
        unreliable = provider(north_km=1.0, record=ProviderRecord(acceptance_rate=0.3, no_shows=2))
        reliable = provider(north_km=2.0, record=ProviderRecord(acceptance_rate=0.95))
        (d,) = decide_batch([request()], [unreliable, reliable], [], Weights())
        assert d.provider_id == reliable.id

    def test_continuity_prefers_whoever_served_the_elder_before(self) -> None:
        usual, other = provider(north_km=1.5), provider(north_km=1.0)
        (d,) = decide_batch([request(served_by=frozenset({usual.id}))], [usual, other], [], Weights())
        assert d.provider_id == usual.id and d.score_parts["continuity"] == -1.0

    def test_continuity_names_the_caregiver_who_came_before(self) -> None:
        a, b = caregiver("cleaning"), caregiver("cleaning")
        p = provider(caregivers=(a, b))
        (d,) = decide_batch(
            [request(skills=("cleaning",), served_by_caregivers=frozenset({b.id}))], [p], [], Weights()
        )
        assert d.caregiver_id == b.id


class TestPrices:
    def test_a_scarce_unit_is_left_to_whoever_will_have_no_other_choice(self) -> None:
        # One provider near both (1 place) and one only this elder reaches. Later today an elder
        # 8 km north will call whom only the shared provider reaches: the price says so.
        shared = provider(north_km=4.0, capacity=1, radius=5.0)
        spare = provider(north_km=-3.0, capacity=5, radius=5.0)
        now = request(north_km=1.0)  # 3 km to shared, 4 km to spare
        later = request(north_km=8.0)
        usage = Usage({p.id: p for p in (shared, spare)}, [])
        prices = capacity_prices(aggregate([(later, 1.0)]), [shared, spare], usage, Weights())
        key = (shared.id, capacity_key(shared, later.kind, later.window_start, later.slot))
        assert (
            prices[key] > 1.0
            and (spare.id, capacity_key(spare, now.kind, now.window_start, now.slot)) not in prices
        )
        without = placed(decide_batch([now], [shared, spare], [], Weights()))
        with_prices = decide_batch([now], [shared, spare], [], Weights(), prices)
        assert without[now.id] == shared.id and with_prices[0].provider_id == spare.id
        (free,) = decide_batch([now], [shared, spare], [], Weights())
        assert "capacity_price" not in free.score_parts


class TestKeptArrays:
    """The providers' arrays are kept from batch to batch for the very same ProviderInfo objects
    (arrays.providers_for); a provider that changed is another object, and is seen at once."""

    def test_the_same_providers_decide_alike_and_share_their_arrays(self) -> None:
        providers = [provider(north_km=1.0, capacity=1), provider(north_km=-2.0, capacity=1)]
        batch = [request(north_km=0.0), request(north_km=2.5), request(north_km=1.0)]
        assert decide_batch(batch, providers, []) == decide_batch(batch, list(providers), [])
        assert providers_for(providers, Weights()) is providers_for(list(providers), Weights())
        assert providers_for(providers, Weights()) is not providers_for(providers, NEAREST)

    def test_a_changed_provider_is_seen_by_the_next_batch(self) -> None:
        near, far = provider(north_km=1.0, capacity=1), provider(north_km=-2.0, capacity=1)
        r = request()
        assert placed(decide_batch([r], [near, far], [])) == {r.id: near.id}
        narrow = replace(near, service_radius_km=0.5)
        assert placed(decide_batch([r], [narrow, far], [])) == {r.id: far.id}
        closed = replace(near, open_time="20:00")
        assert placed(decide_batch([r], [closed, far], [])) == {r.id: far.id}
        unskilled = replace(near, caregivers=(caregiver("cleaning"),))
        needs = request(skills=("bathing",))
        assert placed(decide_batch([needs], [unskilled, far], [])) == {needs.id: far.id}
        assert placed(decide_batch([r], [near, far], [])) == {r.id: near.id}
