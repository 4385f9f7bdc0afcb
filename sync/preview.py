"""Preview: what the hub would send for a real order, without sending anything.

The order is pulled from its store and run through the very pipeline a sync uses, with the back-office
clients swapped for recorders: reads (customer, item and invoice look-ups) go to QuickBooks and the
bindings as usual; every create, update or void is recorded instead of sent, and nothing is written to
the hub's database. So the payloads shown are exactly the ones a sync would send now.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from connectors.errors import ConnectorError
from hub.mapping_rules import rules_for
from mappings import quickbooks as qbmap
from mappings.hubspot import explain_contact
from mappings.model import MappingError, Order
from mappings.shopify import order_from_graphql
from mappings.woocommerce import order_from_rest
from sync.accounts import Accounts
from sync.ledger import Ledger, Source
from sync.orders import OrderPipeline

if TYPE_CHECKING:
    from hub.runtime import Hub


class PreviewError(LookupError):
    """The order cannot be found or previewed; the message says why."""


@dataclass
class Preview:
    order: Order
    rules_version: int
    requests: list[dict[str, Any]] = field(default_factory=list)   # what would be sent, in order
    steps: list[dict[str, Any]] = field(default_factory=list)      # what each step found or would do
    error: str | None = None                                       # why a sync would fail now
    traces: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts as strings with their exact digits."""
        return _plain({"order": self.order.to_dict(), "rules_version": self.rules_version,
                       "requests": self.requests, "steps": self.steps, "error": self.error, "traces": self.traces})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def preview_order(hub: Hub, merchant_id: int, order_ref: str) -> Preview:
    accounts = Accounts(hub, merchant_id)
    order = find_order(accounts, order_ref)
    with hub.sessions() as s:
        rules = rules_for(s, merchant_id)
        from hub.mapping_rules import rule_set
        row = rule_set(s, merchant_id)
        version = row.version if row else 0
    preview = Preview(order=order, rules_version=version)
    recorder = _Recorder(preview)
    run = SimpleNamespace(id=0, merchant_id=merchant_id, attempts=1, source_platform=order.platform,
                          source_id=order.source_id, connection_id=None)
    pipeline = _DryRunPipeline(hub, run, recorder, _DryRunAccounts(accounts, preview), order, rules)  # type: ignore[arg-type]
    pipeline.ledger = _DryRunLedger(hub, merchant_id)
    try:
        pipeline._qb = _DryRunQuickBooks(accounts.quickbooks(), preview)  # type: ignore[assignment]
        if order.cancelled_at and not order.is_paid:
            binding = pipeline.invoice_binding()
            if binding is None:
                preview.steps.append({"step": "order", "outcome": "skipped",
                                      "message": "the order was cancelled before it was invoiced"})
            else:
                pipeline.void_invoice(binding.target_id)
        else:
            pipeline.execute()
    except MappingError as exc:
        preview.error = f"mapping: {exc}"
    except ConnectorError as exc:
        preview.error = str(exc)
    if pipeline.last_invoice_inputs:
        _, traces = qbmap.explain_invoice(order, rules, **pipeline.last_invoice_inputs)
        preview.traces = {t.path: f"{t.value} ← {t.source}" for t in traces}
    if order.customer.email and accounts.connection("hubspot") is not None:
        _, contact_traces = explain_contact(order.customer, order, rules)
        preview.traces.update({f"hubspot.{t.path}": f"{t.value} ← {t.source}" for t in contact_traces})
    return preview


def find_order(accounts: Accounts, ref: str) -> Order:
    """An order of the merchant's store by id (``4501``) or name (``#1001``/``1001``)."""
    ref = ref.strip()
    conn = accounts.connection("shopify") or accounts.connection("woocommerce")
    if conn is None:
        raise PreviewError("the merchant has no connected store")
    if conn.platform == "shopify":
        client = accounts.shopify(conn.account)
        order_id = ref if ref.isdigit() and len(ref) > 6 else None
        if order_id is None:
            name = ref if ref.startswith("#") else f"#{ref}"
            nodes, _ = client.orders_page(query=f"name:{name}", after=None, first=5)
            match = next((n for n in nodes if n.get("name") == name), None)
            if match is None and ref.isdigit():
                order_id = ref
            elif match is None:
                raise PreviewError(f"no order {name} in {conn.account}")
            else:
                order_id = str(match.get("legacyResourceId"))
        fetched = client.fetch_order(order_id)
        if fetched is None:
            raise PreviewError(f"no order {ref} in {conn.account}")
        return order_from_graphql(*fetched)
    data = accounts.woocommerce(conn.id).fetch_order(ref.lstrip("#")) if ref.lstrip("#").isdigit() else None
    if data is None:
        raise PreviewError(f"no order {ref} in {conn.account}")
    return order_from_rest(data)


class _Recorder:
    def __init__(self, preview: Preview) -> None:
        self.preview = preview
        self.current: str | None = None

    def begin(self, step: str) -> None:
        self.current = step

    def record(self, step: str, outcome: str, *, target_platform: str | None = None, target_type: str | None = None,
               target_id: str | None = None, message: str | None = None) -> None:
        self.preview.steps.append({"step": step, "outcome": outcome, "target": {
            "platform": target_platform, "type": target_type, "id": target_id} if target_id else None,
            "message": message})


class _DryRunPipeline(OrderPipeline):
    def _lock(self, what: str):  # noqa: ANN202 - nothing is written, so nothing to serialise
        return contextlib.nullcontext()


class _DryRunLedger(Ledger):
    """Reads the real bindings; keeps new ones in memory."""

    def __init__(self, hub: Hub, merchant_id: int) -> None:
        super().__init__(hub.sessions, merchant_id)
        self._new: dict[tuple[Source, str, str], Any] = {}

    def find(self, source: Source, target_platform: str, target_type: str):  # noqa: ANN201
        return self._new.get((source, target_platform, target_type)) or super().find(source, target_platform,
                                                                                    target_type)

    def bind(self, source: Source, target_platform: str, target_type: str, target_id: str, *,
             data: dict[str, Any] | None = None, run_id: int | None = None) -> None:
        self._new[(source, target_platform, target_type)] = SimpleNamespace(target_id=target_id, data=data or {})


class _DryRunQuickBooks:
    """Reads pass through to QuickBooks; writes are recorded and answered with what QuickBooks would return."""

    def __init__(self, client: Any, preview: Preview) -> None:
        self._client = client
        self._preview = preview
        self._count = 0

    def __getattr__(self, name: str) -> Any:
        if name in ("query", "find_one", "get", "preferences", "changes_since"):
            return getattr(self._client, name)
        raise AttributeError(name)

    def create(self, entity: str, payload: dict[str, Any], *, request_id: str | None = None,
               params: dict[str, str] | None = None) -> dict[str, Any]:
        self._count += 1
        self._preview.requests.append({"platform": "quickbooks", "operation": "create", "entity": entity,
                                       "request_id": request_id, "payload": payload})
        answer = {**payload, "Id": f"new-{entity.lower()}-{self._count}", "SyncToken": "0"}
        if entity == "Invoice":
            total = qbmap.invoice_total(payload)
            answer.update(TotalAmt=total, Balance=total)
        return answer

    def update(self, entity: str, payload: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
        self._preview.requests.append({"platform": "quickbooks", "operation": "update", "entity": entity,
                                       "payload": payload})
        answer = dict(payload)
        if entity == "Invoice":
            total = qbmap.invoice_total(payload)
            answer.update(TotalAmt=total, Balance=total)
        return answer

    def void(self, entity: str, object_id: str, sync_token: str, **_: Any) -> dict[str, Any]:
        self._preview.requests.append({"platform": "quickbooks", "operation": "void", "entity": entity,
                                       "payload": {"Id": object_id, "SyncToken": sync_token}})
        return {"Id": object_id}


class _DryRunHubSpot:
    def __init__(self, preview: Preview) -> None:
        self._preview = preview

    def upsert_contacts(self, contacts: list[dict[str, str]]) -> list[Any]:
        self._preview.requests.append({"platform": "hubspot", "operation": "upsert", "entity": "contact",
                                       "payload": contacts})
        return [SimpleNamespace(id="new-contact", email=c.get("email", ""), created=True) for c in contacts]


class _DryRunAccounts:
    def __init__(self, accounts: Accounts, preview: Preview) -> None:
        self._accounts = accounts
        self._preview = preview

    def hubspot(self) -> _DryRunHubSpot | None:
        return _DryRunHubSpot(self._preview) if self._accounts.connection("hubspot") is not None else None

    def quickbooks(self) -> Any:
        raise AssertionError("the preview pipeline uses its own QuickBooks recorder")
