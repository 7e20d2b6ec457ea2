"""Providers an elder refused: recorded by an operator, never offered to that elder again."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatch.core.auth import Principal
from dispatch.core.errors import Conflict, NotFound
from dispatch.elders import service as elder_service
from dispatch.matching.models import RefusedProvider
from dispatch.matching.schemas import RefusalCreate, RefusalRead
from dispatch.orders import offers
from dispatch.orders.models import Offer, OfferStatus, ServiceRequest
from services.models import Provider

REFUSAL_REASON = "the elder refused this provider"


def list_refusals(*, session: Session, principal: Principal, elder_id: int) -> list[RefusalRead]:
    elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    rows = session.exec(
        select(RefusedProvider, Provider)
        .join(Provider, col(Provider.id) == RefusedProvider.provider_id)
        .where(RefusedProvider.elder_id == elder_id)
        .order_by(col(RefusedProvider.created_at), col(RefusedProvider.id))
    ).all()
    return [refusal_read(r, p) for r, p in rows]


def add_refusal(
    *, session: Session, principal: Principal, elder_id: int, refusal_in: RefusalCreate
) -> RefusalRead:
    """Record the refusal, and take back any offer of this elder's requests the provider holds
    (the request goes on to the next candidate)."""
    elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    provider = session.get(Provider, refusal_in.provider_id)
    if provider is None:
        raise NotFound(f"provider {refusal_in.provider_id} not found")
    if _find(session, elder_id, refusal_in.provider_id) is not None:
        raise Conflict(f"elder {elder_id} already refused provider {refusal_in.provider_id}")
    refusal = RefusedProvider(
        elder_id=elder_id,
        provider_id=refusal_in.provider_id,
        reason=refusal_in.reason,
        created_by=principal.id,
    )
    session.add(refusal)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent twin got there first (the request rolls back)
        raise Conflict(f"elder {elder_id} already refused provider {refusal_in.provider_id}") from exc
    pending = session.exec(
        select(Offer)
        .join(ServiceRequest, col(ServiceRequest.id) == Offer.request_id)
        .where(
            ServiceRequest.elder_id == elder_id,
            Offer.provider_id == refusal_in.provider_id,
            col(Offer.status) == OfferStatus.PENDING,
        )
    ).all()
    withdrawn = [o.id for o in pending if o.id is not None and offers.decline_for(session, o, REFUSAL_REASON)]
    read = refusal_read(refusal, provider)
    read.withdrawn_offers = withdrawn
    return read


def remove_refusal(*, session: Session, principal: Principal, elder_id: int, provider_id: int) -> RefusalRead:
    elder_service.get_elder(session=session, principal=principal, elder_id=elder_id)
    refusal = _find(session, elder_id, provider_id)
    provider = session.get(Provider, provider_id)
    if refusal is None or provider is None:
        raise NotFound(f"elder {elder_id} has not refused provider {provider_id}")
    read = refusal_read(refusal, provider)
    session.delete(refusal)
    session.flush()
    return read


def refused_by(session: Session, elder_ids: Collection[int]) -> dict[int, set[int]]:
    """Refused provider ids per elder, for a batch of elders in one query."""
    out: dict[int, set[int]] = {}
    if not elder_ids:
        return out
    rows = session.exec(
        select(RefusedProvider.elder_id, RefusedProvider.provider_id).where(
            col(RefusedProvider.elder_id).in_(list(elder_ids))
        )
    ).all()
    for elder_id, provider_id in rows:
        out.setdefault(elder_id, set()).add(provider_id)
    return out


def _find(session: Session, elder_id: int, provider_id: int) -> RefusedProvider | None:
    return session.exec(
        select(RefusedProvider).where(
            RefusedProvider.elder_id == elder_id, RefusedProvider.provider_id == provider_id
        )
    ).first()


def refusal_read(refusal: RefusedProvider, provider: Provider) -> RefusalRead:
    return RefusalRead(
        elder_id=refusal.elder_id,
        provider_id=refusal.provider_id,
        provider_name=provider.name,
        provider_kind=provider.kind,
        reason=refusal.reason,
        created_by=refusal.created_by,
        created_at=refusal.created_at,
    )
