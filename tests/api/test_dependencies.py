"""Routes take narrow typed dependencies (a service, the settings), never the whole container."""

import importlib
import inspect
import pkgutil
from typing import get_type_hints

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import trooply.api.routers
from trooply.container import Container


def _routes() -> list[APIRoute]:
    modules = [importlib.import_module(f"trooply.api.routers.{info.name}")
               for info in pkgutil.iter_modules(trooply.api.routers.__path__)]
    return [route for module in modules for route in module.router.routes if isinstance(route, APIRoute)]


def _dependency_calls(dependant: Dependant):
    for dependency in dependant.dependencies:
        call = dependency.call
        # A dependency may be an instance (deps.ScopedKey): what FastAPI calls is its __call__.
        yield call if inspect.isfunction(call) or inspect.ismethod(call) else call.__call__
        yield from _dependency_calls(dependency)


def test_no_route_depends_on_the_container():
    routes = _routes()
    assert any(route.path == "/v1/search/text" for route in routes)
    takes_container = sorted({f"{route.path}: {call.__name__}" for route in routes
                              for call in _dependency_calls(route.dependant)
                              if get_type_hints(call).get("return") is Container})
    assert takes_container == []
