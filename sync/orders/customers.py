"""The customer step: each buyer (per currency: QuickBooks fixes a customer's currency) becomes one
QuickBooks customer. Bindings first; then one ``PrimaryEmailAddr IN (…)`` look-up for buyers with an
e-mail; then creates through the batch endpoint (a guest without e-mail, whom nothing finds again, alone
with its ``requestid``). A display name taken by someone else gets the e-mail, then the order name, added.
A guest is one customer per order (``OrderContext.buyer_key``)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from connectors.quickbooks import DUPLICATE_NAME, Fault
from mappings import quickbooks as qbmap
from mappings.inputs import shown
from mappings.targets import invoice_currency
from sync.ledger import Source
from sync.orders.bindings import NewBinding
from sync.orders.qb_batch import Op, fault_error

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

QB = "quickbooks"


def customers(ctx: OrderContext) -> None:
    """Bindings, then one ``PrimaryEmailAddr IN (…)`` look-up, then creates (``_find_or_create``)."""
    live = ctx.live()
    ctx.begin(live, "customer")
    ctx.each(live, lambda e: _customer_source(ctx, e))
    live = [e for e in live if e.live]
    known = ctx.ledger.bound([e.state["customer_source"] for e in live], QB, "customer")
    groups: dict[Source, list[Entry]] = defaultdict(list)
    for e in live:
        b = known.get(e.state["customer_source"])
        if b is not None:
            e.customer_id = b.target_id
            e.rec.record("customer", "found", target_platform=QB, target_type="customer", target_id=b.target_id,
                         message="bound earlier")
        else:
            groups[e.state["customer_source"]].append(e)
    if not groups:
        return
    try:
        with ctx.lock_all([f"buyer:{src.id}" for src in groups]):
            _find_or_create_customers(ctx, groups)
    except Exception as exc:  # noqa: BLE001 - a lock or look-up failure: these buyers' orders retry
        ctx.fail_all([e for group in groups.values() for e in group], exc)


def _customer_source(ctx: OrderContext, e: Entry) -> None:
    assert e.order is not None
    currency = invoice_currency(e.order, ctx.rules, ctx.home_currency)
    e.state["currency"] = currency
    if currency is not None:   # its rate, before anything is created in that currency
        e.state["exchange_rate"] = ctx.exchange_rate(e)
    key = ctx.buyer_key(e)
    e.state["customer_source"] = Source("hub", "buyer", key if currency is None else f"{key}|{currency}")


def _find_or_create_customers(ctx: OrderContext, groups: dict[Source, list[Entry]]) -> None:
    home = (ctx.home_currency or "").upper()
    again = ctx.ledger.bound(list(groups), QB, "customer")  # bound while we waited
    resolved: dict[Source, tuple[str, dict[str, Any]]] = {
        src: ("bound", {"Id": b.target_id, "DisplayName": (b.data or {}).get("display_name")})
        for src, b in again.items()}
    todo = {src: g for src, g in groups.items() if src not in resolved}
    _bind_customers(ctx, groups, resolved)

    def currency_of(row: dict[str, Any]) -> str:
        return (((row.get("CurrencyRef") or {}).get("value")) or home).upper()

    def email_of(row: dict[str, Any]) -> str:
        return ((row.get("PrimaryEmailAddr") or {}).get("Address") or "").strip().lower()

    first = {src: g[0] for src, g in todo.items()}
    refused: dict[str, Exception] = {}
    emails = [_email(first[s]) for s in todo if _email(first[s])]
    rows = ctx.ops.find_in("Customer", "PrimaryEmailAddr", emails, refused=refused) if emails else []
    for src in [src for src in todo if _email(first[src]) in refused]:
        ctx.fail_all(todo.pop(src), refused[_email(first[src])])
    by_email: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_email[email_of(row)].append(row)
    names: dict[Source, str] = {}
    for src in todo:
        e = first[src]
        currency = (e.state["currency"] or home).upper()
        match = next((r for r in by_email.get(_email(e).lower(), []) if currency_of(r) == currency), None) \
            if _email(e) else None
        if match is not None:
            resolved[src] = ("found", match)
            continue
        name = qbmap.customer_payload(e.order.customer)["DisplayName"]
        names[src] = f"{name} ({e.state['currency']})" if e.state["currency"] else name
    for round_ in range(3):  # create; a name taken → its owner (same e-mail) or a distinct name, twice
        if not names:
            break
        ops = [Op(str(i), qbmap.customer_payload(first[src].order.customer, display_name=name,
                                                 currency=first[src].state["currency"]),
                  ctx.rid("buyer", src.id.split("|")[0], "customer", name))
               for i, (src, name) in enumerate(names.items())]
        guests = {op.key for op, src in zip(ops, names, strict=True) if not _email(first[src])}
        # a guest cannot be found again by e-mail: created alone, with its requestid
        answers = {**ctx.ops.create_many("Customer", [op for op in ops if op.key not in guests]),
                   **ctx.ops.create_each("Customer", [op for op in ops if op.key in guests])}
        taken: dict[Source, str] = {}
        for op, (src, name) in zip(ops, names.items(), strict=True):
            answer = answers[op.key]
            if isinstance(answer, dict):
                resolved[src] = ("created", answer)
            elif isinstance(answer, Fault) and answer.code == DUPLICATE_NAME and round_ < 2:
                taken[src] = name
            else:
                err = fault_error(answer, f"customer {shown(name)}") if isinstance(answer, Fault) else answer
                for e in todo[src]:
                    e.fail(err)
        _bind_customers(ctx, groups, resolved)
        names = {}
        if taken:
            owners = ctx.ops.find_in("Customer", "DisplayName", list(taken.values()))
            by_name = {str(r.get("DisplayName") or "").casefold(): r for r in owners}
            for src, name in taken.items():
                e = first[src]
                owner = by_name.get(name.casefold())
                currency = (e.state["currency"] or home).upper()
                if owner and _email(e) and email_of(owner) == _email(e).lower() and currency_of(owner) == currency:
                    resolved[src] = ("found", owner)
                    continue
                names[src] = _distinct_name(e, name, force_order=round_ > 0)
    _bind_customers(ctx, groups, resolved)


def _email(e: Entry) -> str:
    assert e.order is not None
    return (e.order.customer.email or "").strip()


def _distinct_name(e: Entry, name: str, force_order: bool) -> str:
    """A display name taken by a stranger (never merged): the e-mail added, or the order name (a guest, or
    the e-mail's name taken too)."""
    assert e.order is not None
    email = e.order.customer.email
    suffix = f" ({e.order.name})" if force_order or not email else f" ({email})"
    return (name[: 500 - len(suffix)] + suffix).replace(":", "-")


def _bind_customers(ctx: OrderContext, groups: dict[Source, list[Entry]],
                    resolved: dict[Source, tuple[str, dict[str, Any]]]) -> None:
    """Bind what was resolved since the last call and give each order of those buyers its customer."""
    rows = []
    for src, (outcome, customer) in list(resolved.items()):
        group = [e for e in groups.get(src) or [] if e.live]
        if not group or group[0].customer_id:
            continue
        if outcome != "bound":
            rows.append(NewBinding(src, QB, "customer", customer["Id"],
                                   {"display_name": customer.get("DisplayName")}, group[0].run.id))
        for i, e in enumerate(group):
            e.customer_id = customer["Id"]
            e.rec.record("customer", outcome if i == 0 and outcome != "bound" else "found", target_platform=QB,
                         target_type="customer", target_id=customer["Id"],
                         message=customer.get("DisplayName") if outcome != "bound" else "bound earlier")
    ctx.ledger.bind_many(rows)
