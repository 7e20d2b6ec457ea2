"""Elder registry services. Scope: staff see every elder, a family account its linked elders,
a provider account none directly (it sees what its offers and jobs carry)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal, Role, User, visible_phone
from dispatch.core.clock import utcnow
from dispatch.core.errors import Conflict, NotFound
from dispatch.elders.models import Consent, Elder, FamilyLink
from dispatch.elders.schemas import (
    ElderCreate,
    ElderRead,
    ElderUpdate,
    FamilyLinkCreate,
    FamilyLinkUpdate,
    FamilyMember,
)


def create_elder(*, session: Session, elder_in: ElderCreate) -> Elder:
    elder = Elder(**elder_in.model_dump())
    session.add(elder)
    session.flush()
    return elder


def linked_elder_ids(*, session: Session, user_id: int) -> set[int]:
    stmt = select(FamilyLink.elder_id).where(FamilyLink.user_id == user_id)
    return set(session.exec(stmt).all())


def can_see_elder(*, session: Session, principal: Principal, elder_id: int) -> bool:
    if principal.is_staff:
        return True
    if principal.role == Role.FAMILY:
        return elder_id in linked_elder_ids(session=session, user_id=principal.id)
    return False


def get_elder(*, session: Session, principal: Principal, elder_id: int) -> Elder:
    """The elder if the caller may see it; an unknown and a foreign id answer alike."""
    elder = session.get(Elder, elder_id)
    if elder is None or not can_see_elder(session=session, principal=principal, elder_id=elder_id):
        raise NotFound(f"elder {elder_id} not found")
    return elder


def find_elders(
    *,
    session: Session,
    principal: Principal,
    phone: str | None = None,
    township: str | None = None,
    name: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Elder]:
    """Caller lookup and listing. A phone matches the elder's own number or a linked relative's."""
    stmt = select(Elder)
    if phone is not None:
        relatives = (
            select(FamilyLink.elder_id)
            .join(User, col(User.id) == FamilyLink.user_id)
            .where(User.phone == phone)
        )
        stmt = stmt.where((col(Elder.phone) == phone) | col(Elder.id).in_(relatives))
    if township:
        stmt = stmt.where(Elder.township == township)
    if name:
        stmt = stmt.where(col(Elder.name).contains(name))
    if principal.role == Role.FAMILY:
        stmt = stmt.where(
            col(Elder.id).in_(select(FamilyLink.elder_id).where(FamilyLink.user_id == principal.id))
        )
    elif not principal.is_staff:
        return []
    return session.exec(stmt.order_by(col(Elder.id)).offset(offset).limit(limit)).all()


def update_elder(*, session: Session, elder: Elder, elder_in: ElderUpdate) -> Elder:
    for key, value in elder_in.model_dump(exclude_unset=True).items():
        setattr(elder, key, value)
    elder.updated_at = utcnow()
    session.add(elder)
    session.flush()
    return elder


def link_family(*, session: Session, elder: Elder, link_in: FamilyLinkCreate) -> FamilyLink:
    user = session.exec(select(User).where(User.username == link_in.username)).first()
    if user is None:
        raise NotFound(f"no account named {link_in.username!r}")
    if user.role != Role.FAMILY:
        raise Conflict(f"account {link_in.username!r} is not a family account")
    assert elder.id is not None and user.id is not None
    link = session.exec(
        select(FamilyLink).where(FamilyLink.elder_id == elder.id, FamilyLink.user_id == user.id)
    ).first()
    if link is None:
        link = FamilyLink(elder_id=elder.id, user_id=user.id)
    link.relation = link_in.relation
    link.consent = link_in.consent
    session.add(link)
    session.flush()
    return link


def update_family_link(
    *, session: Session, elder: Elder, user_id: int, link_in: FamilyLinkUpdate
) -> FamilyLink:
    link = family_link(session=session, elder_id=elder.id or 0, user_id=user_id)
    if link is None:
        raise NotFound(f"no family link of account {user_id} to elder {elder.id}")
    for key, value in link_in.model_dump(exclude_unset=True).items():
        setattr(link, key, value)
    session.add(link)
    session.flush()
    return link


def family_link(*, session: Session, elder_id: int, user_id: int) -> FamilyLink | None:
    stmt = select(FamilyLink).where(FamilyLink.elder_id == elder_id, FamilyLink.user_id == user_id)
    return session.exec(stmt).first()


def family_links(*, session: Session, user_id: int) -> list[FamilyLink]:
    """A family account's links, i.e. its elders and what each consented it may see."""
    stmt = select(FamilyLink).where(FamilyLink.user_id == user_id).order_by(col(FamilyLink.id))
    return list(session.exec(stmt).all())


def member_read(*, principal: Principal, link: FamilyLink, user: User) -> FamilyMember:
    return FamilyMember(
        user_id=user.id or 0,
        username=user.username,
        display_name=user.display_name,
        relation=link.relation,
        consent=Consent(link.consent),
        phone=visible_phone(principal, user.phone),
    )


def family_of(*, session: Session, elder_id: int) -> list[tuple[FamilyLink, User]]:
    stmt = (
        select(FamilyLink, User)
        .join(User, col(User.id) == FamilyLink.user_id)
        .where(FamilyLink.elder_id == elder_id)
        .order_by(col(FamilyLink.id))
    )
    return [(link, user) for link, user in session.exec(stmt).all()]


# Built once, the elders bound: read by every accept batch (its families' texts).
_FAMILY_PHONES = (
    select(col(FamilyLink.elder_id), col(User.phone))
    .join(User, col(User.id) == FamilyLink.user_id)
    .where(
        col(FamilyLink.elder_id).in_(bindparam("ids", expanding=True)),
        col(User.active).is_(True),
        col(User.phone).is_not(None),
    )
    .order_by(col(FamilyLink.id))
)


def family_phones_of(*, session: Session, elder_ids: Iterable[int]) -> dict[int, list[str]]:
    """The active relatives' phones of many elders at once (in link order, each phone once)."""
    ids = sorted(set(elder_ids))
    phones: dict[int, list[str]] = {}
    if not ids:
        return phones
    session.flush()  # a link or account changed in this transaction counts, as the ORM's execute would see it
    for elder_id, phone in session.connection().execute(_FAMILY_PHONES, {"ids": ids}):
        mine = phones.setdefault(elder_id, [])
        if phone and phone not in mine:
            mine.append(phone)
    return phones


def age_on(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def sees_notes(*, session: Session, principal: Principal, elder_id: int) -> bool:
    if principal.is_staff:
        return True
    if principal.role != Role.FAMILY:
        return False
    link = family_link(session=session, elder_id=elder_id, user_id=principal.id)
    return link is not None and link.consent == Consent.STATUS_AND_NOTES


def elder_read(*, session: Session, principal: Principal, elder: Elder) -> ElderRead:
    assert elder.id is not None
    family = [
        member_read(principal=principal, link=link, user=user)
        for link, user in family_of(session=session, elder_id=elder.id)
        if principal.is_staff or user.id == principal.id
    ]
    return ElderRead(
        id=elder.id,
        name=elder.name,
        phone=visible_phone(principal, elder.phone),
        township=elder.township,
        address=elder.address,
        lat=elder.lat,
        lon=elder.lon,
        care_level=elder.care_level,  # type: ignore[arg-type]
        lives_alone=elder.lives_alone,
        assistance=elder.assistance,  # type: ignore[arg-type]
        birth_date=elder.birth_date,
        age=age_on(elder.birth_date, utcnow().date()),
        notes=elder.notes if sees_notes(session=session, principal=principal, elder_id=elder.id) else None,
        deceased_on=elder.deceased_on,
        family=family,
    )
