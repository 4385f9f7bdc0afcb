"""Batch steps before the invoice: HubSpot contacts, QuickBooks customers and items, for many orders at
once (see ``sync.batch``). Each step reads the bindings of all its objects in one query, asks the
platform only about the unbound ones, and records every binding as soon as the platform answered."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from connectors.errors import Permanent
from connectors.hubspot import BATCH_LIMIT
from connectors.quickbooks import Fault
from mappings import quickbooks as qbmap
from mappings.hubspot import contact_properties
from mappings.targets import ItemTarget, invoice_currency, required_items
from sync.batch_ops import NewBinding, Op, bind_many, bound, fault_error, held_all
from sync.ledger import Source
from sync.narrowing import mark_shared, named_values, settle
from sync.qb_refs import QuickBooksRefs

if TYPE_CHECKING:
    from sync.batch import Entry
    from sync.batch_context import BatchContext

QB = "quickbooks"
DUPLICATE_NAME = "6240"


# -- contacts ---------------------------------------------------------------------------------------
def contacts(ctx: BatchContext) -> None:
    """One HubSpot batch upsert per 100 buyers (by e-mail); a refused batch is narrowed (``_upsert``) so a
    bad address fails only its own orders."""
    live = ctx.live()
    ctx.begin(live, "contact")
    try:
        client = ctx.accounts.hubspot()
    except Exception as exc:  # noqa: BLE001 - e.g. the connection needs reconnecting: every order waits
        ctx.fail_all(live, exc)
        return
    by_email: dict[str, list[Entry]] = defaultdict(list)
    for e in live:
        assert e.order is not None
        if client is None:
            e.rec.record("contact", "skipped", message="no HubSpot connection")
        elif not e.order.customer.email:
            e.rec.record("contact", "skipped", message="the order has no e-mail address")
        else:
            by_email[e.order.customer.email.strip().lower()].append(e)
    if client is None or not by_email:
        return
    props: dict[str, dict[str, str]] = {}
    for email, group in by_email.items():
        def build(e: Entry, email: str = email) -> None:
            assert e.order is not None
            props[email] = contact_properties(e.order.customer, e.order, ctx.rules)
        ctx.each(group, build)   # the latest order of a buyer gives its properties
    emails = [m for m in by_email if m in props]
    for start in range(0, len(emails), BATCH_LIMIT):
        _upsert(ctx, client, emails[start:start + BATCH_LIMIT], props, by_email)


def _upsert(ctx: BatchContext, client: Any, emails: list[str], props: dict[str, dict[str, str]],
            by_email: dict[str, list[Entry]]) -> None:
    """One batch upsert for ``emails``. HubSpot refuses a whole batch for one bad input (400, naming the
    first it found): that input, or else each half, is sent again apart, so only the bad buyer's orders
    fail. An input missing from an answer that has the others (a 207) is asked for again on its own."""
    def call(part: list[str]) -> list[Any]:
        return client.upsert_contacts([props[m] for m in part])

    rows: list[NewBinding] = []
    again: list[str] = []
    for part, answer in settle(emails, call, suspects=named_values(lambda m: m)):
        if isinstance(answer, Exception):
            ctx.fail_all([e for m in part for e in by_email[m]], answer)
            continue
        found = {r.email: r for r in answer}
        for m in part:
            result = found.get(m) or (answer[0] if len(part) == 1 and len(answer) == 1 else None)
            if result is None:
                if len(part) > 1:
                    again.append(m)
                else:
                    ctx.fail_all(by_email[m], Permanent(f"HubSpot did not return the contact {m}", platform="hubspot"))
                continue
            for e in by_email[m]:
                if not e.live:
                    continue
                rows.append(NewBinding(Source("hub", "buyer", ctx.buyer_key(e)), "hubspot", "contact", result.id,
                                       {"email": result.email}, e.run.id))
                e.rec.record("contact", "created" if result.created else "updated", target_platform="hubspot",
                             target_type="contact", target_id=result.id)
    bind_many(ctx.hub.sessions, ctx.merchant_id, rows)
    for m in again:
        _upsert(ctx, client, [m], props, by_email)


# -- customers --------------------------------------------------------------------------------------
def customers(ctx: BatchContext) -> None:
    """Bindings, then one ``PrimaryEmailAddr IN (…)`` look-up, then batch creates. A display name taken by
    someone else gets the e-mail (then the order name) added, as ``sync.orders`` does; a buyer without
    e-mail (nothing to find it by again) is left to the single-order step with its ``requestid``."""
    live = ctx.live()
    ctx.begin(live, "customer")
    ctx.each(live, lambda e: _customer_source(ctx, e))
    live = [e for e in live if e.live]
    known = bound(ctx.hub.sessions, ctx.merchant_id, [e.state["customer_source"] for e in live], QB, "customer")
    groups: dict[Source, list[Entry]] = defaultdict(list)
    for e in live:
        b = known.get(e.state["customer_source"])
        if b is not None:
            e.customer_id = b.target_id
            e.rec.record("customer", "found", target_platform=QB, target_type="customer", target_id=b.target_id,
                         message="bound earlier")
        elif not (e.order and e.order.customer.email):
            ctx.each([e], lambda e: setattr(e, "customer_id", ctx.pipeline(e).customer()))
        else:
            groups[e.state["customer_source"]].append(e)
    if not groups:
        return
    try:
        with held_all(ctx.hub.sessions, [ctx.lock_key(f"buyer:{src.id}") for src in groups]):
            _find_or_create_customers(ctx, groups)
    except Exception as exc:  # noqa: BLE001 - a lock or look-up failure: these buyers' orders retry
        ctx.fail_all([e for group in groups.values() for e in group], exc)


def _customer_source(ctx: BatchContext, e: Entry) -> None:
    assert e.order is not None
    currency = invoice_currency(e.order, ctx.rules, ctx.home_currency)
    e.state["currency"] = currency
    key = ctx.buyer_key(e)
    e.state["customer_source"] = Source("hub", "buyer", key if currency is None else f"{key}|{currency}")


def _find_or_create_customers(ctx: BatchContext, groups: dict[Source, list[Entry]]) -> None:
    home = (ctx.home_currency or "").upper()
    again = bound(ctx.hub.sessions, ctx.merchant_id, list(groups), QB, "customer")  # bound while we waited
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
    rows = ctx.ops.find_in("Customer", "PrimaryEmailAddr", [first[s].order.customer.email.strip() for s in todo],
                           refused=refused) if todo else []
    for src in [src for src in todo if first[src].order.customer.email.strip() in refused]:
        ctx.fail_all(todo.pop(src), refused[first[src].order.customer.email.strip()])
    by_email: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_email[email_of(row)].append(row)
    names: dict[Source, str] = {}
    for src in todo:
        e = first[src]
        currency = (e.state["currency"] or home).upper()
        match = next((r for r in by_email.get(e.order.customer.email.strip().lower(), [])
                      if currency_of(r) == currency), None)
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
        answers = ctx.ops.create_many("Customer", ops)
        taken: dict[Source, str] = {}
        for op, (src, name) in zip(ops, names.items(), strict=True):
            answer = answers[op.key]
            if isinstance(answer, dict):
                resolved[src] = ("created", answer)
            elif isinstance(answer, Fault) and answer.code == DUPLICATE_NAME and round_ < 2:
                taken[src] = name
            else:
                err = fault_error(answer, f"customer {name!r}") if isinstance(answer, Fault) else answer
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
                if owner and email_of(owner) == e.order.customer.email.strip().lower() \
                        and currency_of(owner) == currency:
                    resolved[src] = ("found", owner)
                    continue
                names[src] = _distinct_name(e, name, force_order=round_ > 0)
    _bind_customers(ctx, groups, resolved)


def _distinct_name(e: Entry, name: str, force_order: bool) -> str:
    assert e.order is not None
    email = e.order.customer.email
    suffix = f" ({e.order.name})" if force_order or not email else f" ({email})"
    return (name[: 500 - len(suffix)] + suffix).replace(":", "-")


def _bind_customers(ctx: BatchContext, groups: dict[Source, list[Entry]],
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
    bind_many(ctx.hub.sessions, ctx.merchant_id, rows)


# -- items ------------------------------------------------------------------------------------------
def items(ctx: BatchContext) -> None:
    """Every item the invoices need: bindings, then ``Sku IN``/``Name IN`` look-ups, then batch creates; an
    item the rules do not let the hub create (mapped, fallback) is resolved by ``QuickBooksRefs.item``."""
    live = ctx.live()
    ctx.begin(live, "items")
    ctx.each(live, lambda e: e.state.__setitem__("targets", required_items(e.order, ctx.rules)))
    live = [e for e in live if e.live]
    sources: dict[Source, ItemTarget] = {}
    for e in live:
        for target in e.state["targets"].values():
            sources.setdefault(QuickBooksRefs._item_source(target), target)
    ids = {src: b.target_id for src, b in bound(ctx.hub.sessions, ctx.merchant_id, sources, QB, "item").items()}
    errors: dict[Source, BaseException] = {}
    created: set[Source] = set()
    missing = {src: t for src, t in sources.items() if src not in ids}
    if missing:
        try:
            with held_all(ctx.hub.sessions, [ctx.lock_key(f"item:{s.type}:{s.id}") for s in missing]):
                _find_or_create_items(ctx, missing, ids, errors, created)
        except Exception as exc:  # noqa: BLE001 - a lock or look-up failure: the orders needing them retry
            errors.update({src: exc for src in missing if src not in ids})
            mark_shared(exc, sum(1 for e in live if any(QuickBooksRefs._item_source(t) in errors
                                                        for t in e.state["targets"].values())))
    for e in live:
        made = 0
        for key, target in e.state["targets"].items():
            src = QuickBooksRefs._item_source(target)
            if src in errors:
                e.fail(errors[src])
                break
            e.item_ids[key] = ids[src]
            made += src in created
        if e.live:
            e.rec.record("items", "created" if made else "found", target_platform=QB, target_type="item",
                         message=f"{len(e.item_ids)} item(s), {made} created")


def _find_or_create_items(ctx: BatchContext, missing: dict[Source, ItemTarget], ids: dict[Source, str],
                          errors: dict[Source, BaseException], created: set[Source]) -> None:
    ids.update({src: b.target_id for src, b in bound(ctx.hub.sessions, ctx.merchant_id, missing, QB,
                                                     "item").items()})
    rows: list[NewBinding] = []

    def resolve(src: Source, item: dict[str, Any]) -> None:
        ids[src] = item["Id"]
        rows.append(NewBinding(src, QB, "item", item["Id"], {"name": item.get("Name"), "how": missing[src].how},
                               None))

    todo = {src: t for src, t in missing.items() if src not in ids}
    depth = max((len(t.lookups) for t in todo.values()), default=0)
    for level in range(depth):  # each target's look-ups in its own order: Sku first, then Name, …
        by_field: dict[str, dict[str, list[Source]]] = defaultdict(lambda: defaultdict(list))
        for src, t in todo.items():
            if src not in ids and src not in errors and level < len(t.lookups):
                f, value = t.lookups[level]
                by_field[f][value.casefold()].append(src)
        for f, wanted in by_field.items():
            refused: dict[str, Exception] = {}
            rows_found = ctx.ops.find_in("Item", f, [todo[group[0]].lookups[level][1] for group in wanted.values()],
                                         refused=refused)
            for value, exc in refused.items():  # that value's items (and their orders) fail alone
                errors.update({src: exc for src in wanted.get(value.casefold(), [])})
            for row in rows_found:
                for src in wanted.get(str(row.get(f) or "").casefold(), []):
                    if src not in ids:
                        resolve(src, row)
    creatable = {src: t for src, t in todo.items() if src not in ids and src not in errors and t.create}
    ops = []
    for i, (src, t) in enumerate(creatable.items()):
        try:
            payload: dict[str, Any] = {"Name": t.name, "Type": t.type,
                                       "IncomeAccountRef": {"value": ctx.refs.account(t.account)}}
        except Exception as exc:  # noqa: BLE001 - e.g. the income account is missing: those orders fail
            errors[src] = exc
            continue
        if t.sku:
            payload["Sku"] = t.sku[:100]
        ops.append((src, Op(str(i), payload, ctx.rid("item", t.how, t.name))))
    answers = ctx.ops.create_many("Item", [op for _, op in ops]) if ops else {}
    for src, op in ops:
        answer = answers[op.key]
        if isinstance(answer, dict):
            resolve(src, answer)
            created.add(src)
        elif isinstance(answer, Fault) and answer.code == DUPLICATE_NAME:
            found = ctx.qb.find_one("Item", "Name", creatable[src].name)
            if found:
                resolve(src, found)
            else:
                errors[src] = fault_error(answer, f"item {creatable[src].name!r}")
        else:
            errors[src] = fault_error(answer, f"item {creatable[src].name!r}") if isinstance(answer, Fault) \
                else answer
    bind_many(ctx.hub.sessions, ctx.merchant_id, rows)
    for src, t in todo.items():  # not found and not creatable: the rules' fallback, or a mapping error
        if src not in ids and src not in errors:
            try:
                ids[src], _ = ctx.refs.item(t)
            except Exception as exc:  # noqa: BLE001 - that item's orders fail with its reason
                errors[src] = exc
