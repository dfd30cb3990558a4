"""Typed dependencies: every route signature says what it needs."""

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from trooply.container import Container
from trooply.tenancy.service import Principal


def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]
# A product id in a path: what POST accepts. Control characters (NUL above all, which PostgreSQL refuses)
# are a 422 here, never a query.
ProductIdPath = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def scoped(scope: str):
    """A dependency that authenticates the key, applies its tenant's rate limit and requires one scope
    (catalog, search, ...)."""

    async def authorise(request: Request, container: ContainerDep) -> Principal:
        key = _bearer_key(request)
        # A cached key is answered here; a lookup that reads the database goes to a thread.
        principal = container.tenants.recently_authenticated(key)
        if principal is None:
            principal = await run_in_threadpool(container.tenants.authenticate, key)
        await request.app.state.rate_limiter.check_tenant(principal)
        principal.require(scope)
        return principal

    return Depends(authorise)


CatalogPrincipal = Annotated[Principal, scoped("catalog")]
SearchPrincipal = Annotated[Principal, scoped("search")]
FeedbackPrincipal = Annotated[Principal, scoped("feedback")]
