"""Orchestration: the order and payment pipelines, runs, bindings, dispatch and the passes around them.

Importing ``sync`` hands every ``Hub`` its job dispatcher (``sync.dispatch.make_dispatcher``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import runtime

if TYPE_CHECKING:
    from hub.runtime import Dispatcher, Hub


def _make_dispatcher(hub: Hub) -> Dispatcher:
    from sync.dispatch import make_dispatcher

    return make_dispatcher(hub)


runtime.provide_dispatcher(_make_dispatcher)
