"""The Jinghai demo district: 18 townships, 324 day-care centers, 36 canteens, home-care
providers with caregivers, 2,000 elders and one account per role. Deterministic (seeded
random) and idempotent: what exists already (by name, phone or username) is left alone."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from dispatch.core.auth import Role, User, hash_password
from dispatch.core.geo import DISTRICT_BOUNDS, TOWNSHIPS
from dispatch.elders.models import Consent, Elder, FamilyLink
from services.models import Caregiver, Provider

SEED = 20261128
DAY_CARE_PER_TOWNSHIP = 18  # 18 x 18 = 324
CANTEENS_PER_TOWNSHIP = 2  # 36
HOME_CARE_PROVIDERS = 24
DEFAULT_ELDERS = 2000

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
    "阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段钱汤尹黎易常武乔贺赖龚文"
)
GIVEN_F = tuple(
    "秀英 桂英 秀兰 玉兰 桂兰 淑珍 淑兰 凤英 玉珍 秀珍 凤兰 秀荣 玉梅 桂芳 淑芬 玉芬 秀梅 兰英 凤琴 秀云 "  # noqa: SIM905
    "淑华 玉华 桂珍 素英 玉英 凤芝 秀芝 淑英 金凤 玉凤".split()
)
GIVEN_M = tuple(
    "建国 国华 德明 志强 振华 文明 永福 福生 长林 金山 宝山 玉山 德胜 洪亮 春生 树林 国强 连生 "  # noqa: SIM905
    "占元 庆祥 广福 文华 宝田 秋生 永祥 有才 德才 万顺 长顺 世荣".split()
)
VILLAGE_PARTS = tuple("东西南北前后大小新老王李张刘高马杨赵")
VILLAGE_SUFFIX = ("庄", "屯", "村", "营", "口", "堡", "庄子", "店")
STREETS = tuple("胜利路 和平路 建设路 团结路 兴业路 光明街 幸福街 民主街 文化路 长征路".split())  # noqa: SIM905


@dataclass
class SeedReport:
    providers: int = 0
    caregivers: int = 0
    elders: int = 0
    users: int = 0


DEMO_ACCOUNTS: list[tuple[str, str, Role]] = [
    ("admin", "demo-admin", Role.ADMIN),
    ("manager", "demo-manager", Role.MANAGER),
    ("operator", "demo-operator", Role.OPERATOR),
    ("provider", "demo-provider", Role.PROVIDER),
    ("canteen", "demo-canteen", Role.PROVIDER),
    ("daycare", "demo-daycare", Role.PROVIDER),
    ("family", "demo-family", Role.FAMILY),
]


def _point_near(rng: random.Random, township: str, spread_km: float) -> tuple[float, float]:
    lat0, lon0 = TOWNSHIPS[township]
    lat = lat0 + rng.gauss(0, spread_km / 111.0)
    lon = lon0 + rng.gauss(0, spread_km / 86.5)  # km per degree of longitude at 39 degrees N
    lat = min(max(lat, DISTRICT_BOUNDS["lat"][0] + 0.01), DISTRICT_BOUNDS["lat"][1] - 0.01)
    lon = min(max(lon, DISTRICT_BOUNDS["lon"][0] + 0.01), DISTRICT_BOUNDS["lon"][1] - 0.01)
    return round(lat, 6), round(lon, 6)


def _village(rng: random.Random) -> str:
    return rng.choice(VILLAGE_PARTS) + rng.choice(VILLAGE_PARTS) + rng.choice(VILLAGE_SUFFIX)


def _address(rng: random.Random, township: str) -> str:
    if rng.random() < 0.4:
        return f"{township}{rng.choice(STREETS)}{rng.randint(1, 300)}号"
    return f"{township}{_village(rng)}{rng.randint(1, 200)}号"


def _phone(prefix: str, index: int) -> str:
    return f"+86{prefix}{index:08d}"


def provider_specs(rng: random.Random) -> Iterator[Provider]:
    townships = list(TOWNSHIPS)
    for t_index, township in enumerate(townships):
        for n in range(1, DAY_CARE_PER_TOWNSHIP + 1):
            lat, lon = _point_near(rng, township, 3.0)
            yield Provider(
                name=f"{township}{_village(rng)}老年日间照料服务中心{n}",
                kind="day_care", township=township, address=_address(rng, township), lat=lat, lon=lon,
                phone=_phone("1360", t_index * 100 + n), capacity=rng.choice((20, 30, 40, 60)),
                service_radius_km=5.0, skills=[], open_time="07:30", close_time="18:00",
            )  # fmt: skip
        for n in range(1, CANTEENS_PER_TOWNSHIP + 1):
            lat, lon = _point_near(rng, township, 1.5)
            delivers = n == 1
            yield Provider(
                name=f"{township}老人家食堂{'一二'[n - 1]}号店",
                kind="canteen", township=township, address=_address(rng, township), lat=lat, lon=lon,
                phone=_phone("1361", t_index * 10 + n), capacity=rng.choice((60, 80, 100, 150)),
                service_radius_km=8.0, skills=["meal_delivery"] if delivers else [],
                open_time="10:00", close_time="19:30",
            )  # fmt: skip
    for n in range(1, HOME_CARE_PROVIDERS + 1):
        township = townships[(n - 1) % len(townships)]
        lat, lon = _point_near(rng, township, 1.0)
        all_day = n <= 4
        yield Provider(
            name=f"静海{['康乐', '颐年', '福寿', '安康', '仁爱', '乐龄'][n % 6]}居家养老服务社{n}",
            kind="home_care", township=township, address=_address(rng, township), lat=lat, lon=lon,
            phone=_phone("1362", n), capacity=rng.choice((10, 15, 20, 30)), service_radius_km=25.0,
            skills=["bathing", "cleaning", "nursing", "rehab", "meal_delivery"],
            open_time="00:00" if all_day else "07:00", close_time="24:00" if all_day else "20:00",
        )  # fmt: skip


def caregiver_specs(rng: random.Random, provider: Provider) -> Iterator[Caregiver]:
    assert provider.id is not None
    skill_sets = (
        ["bathing", "cleaning"], ["nursing", "rehab"], ["cleaning", "meal_delivery"],
        ["bathing", "nursing", "cleaning"], ["meal_delivery"], ["rehab", "bathing", "cleaning", "nursing"],
    )  # fmt: skip
    for n in range(rng.randint(5, 8)):
        surname = rng.choice(SURNAMES)
        yield Caregiver(
            provider_id=provider.id,
            name=surname + rng.choice(GIVEN_F + GIVEN_M),
            phone=_phone("1370", provider.id * 10 + n),
            skills=list(skill_sets[(provider.id + n) % len(skill_sets)]),
        )


def elder_spec(rng: random.Random, index: int) -> Elder:
    township = rng.choice(list(TOWNSHIPS))
    lat, lon = _point_near(rng, township, 2.5)
    female = rng.random() < 0.56
    name = rng.choice(SURNAMES) + rng.choice(GIVEN_F if female else GIVEN_M)
    care = rng.choices(("self_care", "partial", "full"), weights=(60, 30, 10))[0]
    assistance = rng.choices(("none", "dibao", "low_income", "tekun"), weights=(70, 15, 10, 5))[0]
    return Elder(
        name=name,
        # Most elders have a mobile, the rest a Tianjin landline: every demo elder is known by phone.
        phone=_phone("1390", index) if rng.random() < 0.9 else f"+8622{60000000 + index}",
        township=township,
        address=_address(rng, township),
        lat=lat,
        lon=lon,
        care_level=care,
        lives_alone=rng.random() < 0.3,
        assistance=assistance,
        birth_date=date(rng.randint(1928, 1961), rng.randint(1, 12), rng.randint(1, 28)),
        notes="糖尿病，少糖饮食"
        if rng.random() < 0.1
        else ("行动不便，需送餐上门" if care == "full" else ""),
    )


Progress = Callable[[str, int, int], None]


def seed_demo(
    session: Session, *, elders: int = DEFAULT_ELDERS, progress: Progress | None = None
) -> SeedReport:
    """Seed (or complete) the demo district. Commits in chunks; running it again adds nothing."""
    rng = random.Random(SEED)
    report = SeedReport()
    note = progress or (lambda _stage, _done, _total: None)

    existing = set(session.exec(select(Provider.name)).all())
    specs = list(provider_specs(rng))
    for i, provider in enumerate(specs, 1):
        if provider.name not in existing:
            session.add(provider)
            report.providers += 1
        note("providers", i, len(specs))
    session.commit()

    home_care = session.exec(select(Provider).where(Provider.kind == "home_care")).all()
    staffed = set(session.exec(select(Caregiver.provider_id)).all())
    for i, provider in enumerate(home_care, 1):
        cg_rng = random.Random(SEED + (provider.id or 0))
        if provider.id not in staffed:
            for caregiver in caregiver_specs(cg_rng, provider):
                session.add(caregiver)
                report.caregivers += 1
        note("caregivers", i, len(home_care))
    session.commit()

    known_phones = set(session.exec(select(Elder.phone)).all())
    elder_rng = random.Random(SEED + 1)
    for index in range(1, elders + 1):
        elder = elder_spec(elder_rng, index)
        if elder.phone not in known_phones:
            session.add(elder)
            report.elders += 1
        if index % 250 == 0 or index == elders:
            session.commit()
        note("elders", index, elders)

    report.users = _seed_accounts(session)
    session.commit()
    return report


def _seed_accounts(session: Session) -> int:
    taken = set(session.exec(select(User.username)).all())
    by_kind = {
        kind: session.exec(select(Provider).where(Provider.kind == kind).order_by(Provider.id)).first()  # type: ignore[arg-type]
        for kind in ("home_care", "canteen", "day_care")
    }
    bound = {"provider": by_kind["home_care"], "canteen": by_kind["canteen"], "daycare": by_kind["day_care"]}
    created = 0
    for username, password, role in DEMO_ACCOUNTS:
        if username in taken:
            continue
        provider = bound.get(username)
        user = User(
            username=username,
            password_hash=hash_password(password),
            role=role,
            display_name={"family": "张丽（女儿）", "operator": "调度员 王芳"}.get(username, username),
            phone="+8613800000001" if role == Role.FAMILY else None,
            provider_id=provider.id if provider else None,
        )
        session.add(user)
        session.flush()
        created += 1
        if role == Role.FAMILY:
            first = session.exec(select(Elder).order_by(Elder.id)).first()  # type: ignore[arg-type]
            if first is not None and first.id is not None and user.id is not None:
                session.add(
                    FamilyLink(
                        elder_id=first.id, user_id=user.id, relation="女儿", consent=Consent.STATUS_AND_NOTES
                    )
                )
    return created
