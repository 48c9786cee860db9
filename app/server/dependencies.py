"""Handlers' dependencies resolved one after another when every provider is a plain function.

Litestar resolves the independent dependencies of a handler (``db``, ``interactions``, ``web_session``...) in an
anyio task group, one task each, so that async providers may overlap their waits. This app's providers are all
synchronous (``Provide(..., sync_to_thread=False)``: constants and the session the middleware already loaded), so
the tasks never wait on anything: they only cost the task group, its cancel scope and one task per dependency, on
every request (measured under uvloop with four providers: 115-120 us a request, 28-35 us called in turn).
``install()`` wraps Litestar's resolution so that a handler whose providers are all synchronous gets them called
in turn, in the same order and with the same cleanup group; any other handler keeps Litestar's own path.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def install() -> bool:
    """Patch ``KwargsModel.resolve_dependencies`` (once per process). False when Litestar's internals moved, in
    which case Litestar's own resolution stays (slower, same results)."""
    try:
        from litestar._kwargs.cleanup import DependencyCleanupGroup
        from litestar._kwargs.dependencies import resolve_dependency
        from litestar._kwargs.kwargs_model import KwargsModel
    except ImportError:  # pragma: no cover - a Litestar release that reorganised its internals
        log.warning("litestar internals moved: dependencies resolved by Litestar's task groups")
        return False
    original = KwargsModel.resolve_dependencies
    if getattr(original, "_foryou_sequential", False):
        return True

    async def resolve_dependencies(self: Any, connection: Any, kwargs: dict[str, Any]) -> Any:
        batches = self.dependency_batches
        if not all(dependency.provide.has_sync_callable for batch in batches for dependency in batch):
            return await original(self, connection, kwargs)
        cleanup_group = DependencyCleanupGroup()
        for batch in batches:  # a batch needs only what earlier batches resolved
            for dependency in batch:
                await resolve_dependency(dependency, connection, kwargs, cleanup_group)
        return cleanup_group

    resolve_dependencies._foryou_sequential = True  # type: ignore[attr-defined]
    KwargsModel.resolve_dependencies = resolve_dependencies  # type: ignore[method-assign]
    return True
