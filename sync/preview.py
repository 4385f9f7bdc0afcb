"""Preview: what the hub would send for a real order, without sending anything.

The order is pulled from its store and run through the very pipeline a sync uses (``sync.orders``, a list
of one), with the back-office write calls swapped for recorders (``PreviewContext``): reads (customer,
item and invoice look-ups) go to QuickBooks and the bindings as usual; every create, update, void or batch
request and every HubSpot upsert is recorded instead of sent, and nothing is written to the hub's
database. So the payloads shown are exactly the ones a sync would send now.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from connectors.errors import ConnectorError, Permanent
from connectors.quickbooks import DUPLICATE_NAME, Fault, amount
from hub.mapping_rules import rules_for
from mappings import quickbooks as qbmap
from mappings.hubspot import explain_contact
from mappings.hubspot_deals import explain_deal
from mappings.model import MappingError, Order
from mappings.rules import MappingRules
from mappings.shopify import order_from_graphql
from mappings.woocommerce import order_from_rest
from sync.accounts import Accounts
from sync.ledger import Source
from sync.orders.bindings import Bindings, NewBinding
from sync.orders.context import Entry, OrderContext
from sync.orders.runner import sync_entries

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
    """What a sync of the store's order ``order_ref`` (id or name) would send now."""
    accounts = Accounts(hub, merchant_id)
    return preview_of(hub, merchant_id, find_order(accounts, order_ref), accounts)


def preview_of(hub: Hub, merchant_id: int, order: Order, accounts: Accounts | None = None) -> Preview:
    """What a sync of ``order`` (as pulled and mapped) would send now."""
    accounts = accounts or Accounts(hub, merchant_id)
    with hub.sessions() as s:
        rules = rules_for(s, merchant_id)
        from hub.mapping_rules import rule_set
        row = rule_set(s, merchant_id)
        version = row.version if row else 0
    preview = Preview(order=order, rules_version=version)
    store = accounts.connection(order.platform)
    run = SimpleNamespace(id=0, merchant_id=merchant_id, attempts=1, source_platform=order.platform,
                          source_id=order.source_id, source_name=order.name,
                          connection_id=store.id if store is not None else None)
    entry = Entry(run=run, rec=_Recorder(preview), load=lambda: order)  # type: ignore[arg-type]
    ctx = PreviewContext(hub, merchant_id, [entry], preview, accounts, rules)
    sync_entries(ctx)
    if isinstance(entry.error, MappingError):
        preview.error = f"mapping: {entry.error}"
    elif isinstance(entry.error, ConnectorError):
        preview.error = str(entry.error)
    elif entry.error is not None:
        raise entry.error
    if entry.outcome is not None and entry.outcome.status != "succeeded":
        preview.steps.append({"step": "order", "outcome": entry.outcome.status, "message": entry.outcome.reason})
    if entry.state.get("invoice_inputs"):
        _, traces = qbmap.explain_invoice(order, rules, **entry.state["invoice_inputs"])
        preview.traces = {t.path: f"{t.value} ← {t.source}" for t in traces}
    if order.customer.email and accounts.connection("hubspot") is not None:
        _, contact_traces = explain_contact(order.customer, order, rules)
        preview.traces.update({f"hubspot.{t.path}": f"{t.value} ← {t.source}" for t in contact_traces})
        if rules.hubspot.deals:
            _, deal_traces = explain_deal(order, rules)
            preview.traces.update({f"hubspot.deal.{t.path}": f"{t.value} ← {t.source}" for t in deal_traces})
    return preview


class PreviewContext(OrderContext):
    """The order pipeline's context with every write recorded instead of sent: QuickBooks creates,
    updates, voids and batch requests and HubSpot upserts go to the preview; reads go to the platforms
    and the bindings; new bindings, step records and locks stay in memory (nothing is written; the credit
    steps stand aside)."""

    dry_run = True

    def __init__(self, hub: Hub, merchant_id: int, entries: list[Entry], preview: Preview, accounts: Accounts,
                 rules: MappingRules) -> None:
        super().__init__(hub, merchant_id, entries, accounts=accounts, bindings=_DryRunBindings(hub, merchant_id),
                         rules=rules)
        self.preview = preview

    @property
    def qb(self) -> Any:
        if self._qb is None:
            self._qb = _DryRunQuickBooks(self.accounts.quickbooks(), self.preview)
        return self._qb

    def _batch_permits(self) -> tuple[Any, Any]:
        return (lambda: None), (lambda: True)   # nothing is sent: no permit of the batch endpoint is spent

    def hubspot(self) -> _DryRunHubSpot | None:
        return _DryRunHubSpot(self.preview) if self.accounts.connection("hubspot") is not None else None

    def lock(self, what: str):  # noqa: ANN201 - nothing is written, so nothing to serialise
        return contextlib.nullcontext()

    def lock_all(self, whats: Any):  # noqa: ANN201
        return contextlib.nullcontext()

    def save_canonical(self, entries: list[Entry]) -> None:
        pass


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


class _DryRunBindings(Bindings):
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

    def bound(self, sources: Any, target_platform: str, target_type: str) -> dict[Source, Any]:
        sources = list(sources)
        found = super().bound(sources, target_platform, target_type)
        found.update({src: b for src in sources if (b := self._new.get((src, target_platform, target_type)))})
        return found

    def bind_many(self, rows: list[NewBinding]) -> None:
        for r in rows:
            self.bind(r.source, r.target_platform, r.target_type, r.target_id, data=r.data)

    def held(self, keys: Any) -> Any:
        return contextlib.nullcontext()

    def note_attempts(self, sources: dict[Source, int | None], target_platform: str, target_type: str, *,
                      known: Any = None) -> None:
        """A preview sends nothing, so it notes no create."""

    def note_refusals(self, sources: Any, target_platform: str, target_type: str) -> None:
        """Nor any refusal."""


class _DryRunQuickBooks:
    """Reads pass through to QuickBooks (or answer from what was recorded); writes are recorded and answered
    with what QuickBooks would return, refusals included: a display name some customer already has is
    refused (6240) as QuickBooks refuses it, so the pipeline picks the name a sync would."""

    def __init__(self, client: Any, preview: Preview) -> None:
        self._client = client
        self._preview = preview
        self._count = 0
        self._made: dict[tuple[str, str], dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        if name in ("query", "find_one", "preferences", "changes_since"):
            return getattr(self._client, name)
        raise AttributeError(name)

    def get(self, entity: str, object_id: str) -> dict[str, Any]:
        made = self._made.get((entity, str(object_id)))
        return dict(made) if made is not None else self._client.get(entity, object_id)

    def create(self, entity: str, payload: dict[str, Any], *, request_id: str | None = None,
               params: dict[str, str] | None = None) -> dict[str, Any]:
        self._refuse_taken_name(entity, payload)
        self._preview.requests.append({"platform": "quickbooks", "operation": "create", "entity": entity,
                                       "request_id": request_id, "payload": payload})
        return self._answer(entity, payload)

    def batch(self, items: list[dict[str, Any]]) -> dict[str, dict[str, Any] | Fault]:
        out: dict[str, dict[str, Any] | Fault] = {}
        for item in items:
            entity = next(k for k in item if k not in ("bId", "operation"))
            try:
                self._refuse_taken_name(entity, item[entity])
            except Permanent as exc:
                out[item["bId"]] = Fault(exc.code, exc.message, exc.detail)
                continue
            self._preview.requests.append({"platform": "quickbooks", "operation": "create", "entity": entity,
                                           "request_id": None, "payload": item[entity]})
            out[item["bId"]] = self._answer(entity, item[entity])
        return out

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

    def _refuse_taken_name(self, entity: str, payload: dict[str, Any]) -> None:
        name = payload.get("DisplayName")
        if entity != "Customer" or not name:
            return
        mine = any(k[0] == "Customer" and str(v.get("DisplayName", "")).casefold() == str(name).casefold()
                   for k, v in self._made.items())
        if mine or self._client.find_one("Customer", "DisplayName", name) is not None:
            raise Permanent(f"Duplicate Name Exists Error: {name}", platform="quickbooks", code=DUPLICATE_NAME)

    def _answer(self, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        answer = {**payload, "Id": f"new-{entity.lower()}-{self._count}", "SyncToken": "0"}
        if entity == "Invoice":
            total = qbmap.invoice_total(payload)
            answer.update(TotalAmt=total, Balance=total)
        if entity == "Payment":   # what it pays off is no longer due (a refund after it is paid back out)
            answer["TotalAmt"] = payload.get("TotalAmt")
            for line in payload.get("Line") or []:
                for txn in line.get("LinkedTxn") or []:
                    paid = self._made.get(("Invoice", str(txn.get("TxnId"))))
                    if paid is not None and txn.get("TxnType") == "Invoice":
                        paid["Balance"] = amount(paid.get("Balance")) - amount(line.get("Amount"))
        self._made[(entity, answer["Id"])] = answer
        return answer


class _DryRunHubSpot:
    def __init__(self, preview: Preview) -> None:
        self._preview = preview

    def upsert_contacts(self, contacts: list[dict[str, str]]) -> list[Any]:
        self._preview.requests.append({"platform": "hubspot", "operation": "upsert", "entity": "contact",
                                       "payload": contacts})
        return [SimpleNamespace(id="new-contact", email=c.get("email", ""), created=True) for c in contacts]

    def ensure_deal_property(self, name: str, label: str, **_: Any) -> None:
        """Read-only in a preview: a missing property is created by the real sync."""

    def upsert_deals(self, key_property: str, deals: list[tuple[str, dict[str, str]]]) -> list[Any]:
        self._preview.requests.append({"platform": "hubspot", "operation": "upsert", "entity": "deal",
                                       "payload": [props for _, props in deals]})
        return [SimpleNamespace(id=f"new-deal-{n}", key=key, new=True) for n, (key, _) in enumerate(deals, 1)]

    def line_items_of(self, deal_ids: list[str], properties: list[str]) -> dict[str, list[dict[str, str]]]:
        return {d: [] for d in deal_ids}

    def create_line_items(self, items: list[tuple[str, dict[str, str]]]) -> int:
        if items:
            self._preview.requests.append({"platform": "hubspot", "operation": "create", "entity": "line_item",
                                           "payload": [props for _, props in items]})
        return len(items)

    def companies_of(self, contact_ids: list[str]) -> dict[str, str]:
        return {}

    def associate_companies(self, pairs: list[tuple[str, str]]) -> None:
        """Not reached: a preview finds no company (its contacts are not created)."""

    def associate_contacts(self, pairs: list[tuple[str, str]]) -> None:
        if pairs:
            self._preview.requests.append({"platform": "hubspot", "operation": "associate",
                                           "entity": "deal_contact", "payload": [list(p) for p in pairs]})
