"""Typed dependencies: every route signature says what it needs."""

from typing import Annotated

from fastapi import Depends, Request

from trooply.container import Container
from trooply.tenancy.service import Principal


def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


def _bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def scoped(scope: str):
    """A dependency that authenticates the key and requires one scope (catalog, search, ...)."""

    def authorise(request: Request, container: ContainerDep) -> Principal:
        principal = container.tenants.authenticate(_bearer_key(request))
        principal.require(scope)
        return principal

    return Depends(authorise)


CatalogPrincipal = Annotated[Principal, scoped("catalog")]
SearchPrincipal = Annotated[Principal, scoped("search")]
FeedbackPrincipal = Annotated[Principal, scoped("feedback")]
