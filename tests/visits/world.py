"""A small district for the visit tests, built through the API: a home-care provider with two
caregivers (an account for the provider, one per caregiver), a second home-care provider, a day-care
center, a canteen, two elders and their relatives."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from dispatch.core.auth import Role
from dispatch.core.clock import LOCAL_TZ, local, utcnow
from tests.helpers import ELDER, HOME_CARE, Api, make_user

# The elder's home (ELDER) and a point about 1.1 km north of it.
HOME = {"lat": ELDER["lat"], "lon": ELDER["lon"]}
FAR = {"lat": ELDER["lat"] + 0.01, "lon": ELDER["lon"]}
NOTES = "糖尿病，少糖饮食"
DAY_CARE = {
    **HOME_CARE,
    "name": "静海镇胜利村老年日间照料服务中心",
    "kind": "day_care",
    "lat": 38.957,
    "lon": 116.984,
    "phone": "+8613600000002",
    "capacity": 30,
    "skills": [],
}
CANTEEN = {
    **HOME_CARE,
    "name": "静海镇老人家食堂一号店",
    "kind": "canteen",
    "lat": 38.951,
    "lon": 116.979,
    "phone": "+8613600000003",
    "capacity": 80,
    "skills": ["meal_delivery"],
}
SITE = {
    "day_care": {"lat": DAY_CARE["lat"], "lon": DAY_CARE["lon"]},
    "canteen": {"lat": CANTEEN["lat"], "lon": CANTEEN["lon"]},
}


def today_window(start: time, end: time, days: int = 0) -> dict[str, str]:
    """A service window on today's local date (Asia/Shanghai), in the past or not."""
    day = local(utcnow()).date() + timedelta(days=days)
    return {
        "window_start": datetime.combine(day, start, LOCAL_TZ).isoformat(),
        "window_end": datetime.combine(day, end, LOCAL_TZ).isoformat(),
    }


# Today's windows, taken when a test asks (not when the module is imported: a run that crosses
# midnight in Beijing, 16:00 UTC, would otherwise file yesterday's meals and count today's).
def day_care_day() -> dict[str, str]:
    return today_window(time(8, 0), time(17, 0))


def lunch() -> dict[str, str]:
    return today_window(time(11, 0), time(12, 30))


def dinner() -> dict[str, str]:
    return today_window(time(17, 0), time(18, 30))


@dataclass
class World:
    api: Api
    operator: str
    manager: str
    admin: str
    provider: dict[str, Any]
    provider_user: str
    caregivers: list[dict[str, Any]]
    caregiver_users: list[str]
    other_provider: dict[str, Any]
    other_user: str
    day_care: dict[str, Any]
    day_care_user: str
    canteen: dict[str, Any]
    canteen_user: str
    elder: dict[str, Any]
    stranger: dict[str, Any]
    daughter: str  # consented to status and notes
    son: str  # status only
    outsider: str  # a family account linked to the stranger only
    extra: dict[str, Any] = field(default_factory=dict)

    def request(
        self, kind: str = "home_care", elder: dict[str, Any] | None = None, **body: Any
    ) -> dict[str, Any]:
        elder_id = (elder or self.elder)["id"]
        return self.api.ok(  # type: ignore[no-any-return]
            "POST", "/api/requests", self.operator, 202, json={"elder_id": elder_id, "kind": kind, **body}
        )

    def assign(
        self, request_id: int, provider: dict[str, Any] | None = None, caregiver: int | None = None
    ) -> None:
        body: dict[str, Any] = {"provider_id": (provider or self.provider)["id"]}
        if caregiver is not None:
            body["caregiver_id"] = caregiver
        # The platform's match worker runs too and may be offering this request at this
        # moment: the assign waits for its locks and withdraws its offer (no 409 to retry).
        response = self.api.call("POST", f"/api/requests/{request_id}/assign", self.operator, json=body)
        assert response.status_code == 200, f"assign {request_id}: {response.status_code} {response.text}"

    def job(self, kind: str = "home_care", caregiver: int = 0, **body: Any) -> int:
        """A request dispatched by hand to the home-care provider's caregiver number `caregiver`."""
        req = self.request(kind, **body)
        self.assign(req["id"], caregiver=self.caregivers[caregiver]["id"])
        return int(req["id"])


def build(api: Api) -> World:
    operator, manager, admin = make_user(Role.OPERATOR), make_user(Role.MANAGER), make_user(Role.ADMIN)
    provider = api.ok("POST", "/api/providers", manager, 201, json=HOME_CARE)
    caregivers = [
        api.ok("POST", f"/api/providers/{provider['id']}/caregivers", manager, 201,
               json={"name": name, "phone": phone, "skills": ["bathing", "cleaning", "nursing", "meal_delivery"]})
        for name, phone in (("王芳", "+8613700000001"), ("刘强", "+8613700000002"))
    ]  # fmt: skip
    other = api.ok(
        "POST", "/api/providers", manager, 201, json={**HOME_CARE, "name": "静海颐年居家养老服务社"}
    )
    day_care = api.ok("POST", "/api/providers", manager, 201, json=DAY_CARE)
    canteen = api.ok("POST", "/api/providers", manager, 201, json=CANTEEN)
    elder = api.ok("POST", "/api/elders", operator, 201, json={**ELDER, "notes": NOTES})
    stranger = api.ok(
        "POST", "/api/elders", operator, 201, json={**ELDER, "name": "李建国", "phone": "+8613800000009"}
    )
    daughter = make_user(Role.FAMILY, phone="+8613900000088")
    son = make_user(Role.FAMILY, phone="+8613900000077")
    outsider = make_user(Role.FAMILY, phone="+8613900000066")
    for user, consent, who in (
        (daughter, "status_and_notes", elder),
        (son, "status", elder),
        (outsider, "status_and_notes", stranger),
    ):
        api.ok(
            "POST",
            f"/api/elders/{who['id']}/family",
            operator,
            201,
            json={"username": user, "consent": consent},
        )
    return World(
        api=api, operator=operator, manager=manager, admin=admin, provider=provider,
        provider_user=make_user(Role.PROVIDER, provider_id=provider["id"]),
        caregivers=caregivers,
        caregiver_users=[make_user(Role.PROVIDER, provider_id=provider["id"], caregiver_id=c["id"]) for c in caregivers],
        other_provider=other, other_user=make_user(Role.PROVIDER, provider_id=other["id"]),
        day_care=day_care, day_care_user=make_user(Role.PROVIDER, provider_id=day_care["id"]),
        canteen=canteen, canteen_user=make_user(Role.PROVIDER, provider_id=canteen["id"]),
        elder=elder, stranger=stranger, daughter=daughter, son=son, outsider=outsider,
    )  # fmt: skip
