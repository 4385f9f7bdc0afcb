"""The items step: a QuickBooks item for every line the invoices need (``mappings.targets.required_items``).
Bindings first (one query for every item of the list), then ``Sku IN``/``Name IN`` look-ups, then batch
creates; an item the rules do not let the hub create (mapped, fallback) is the rules' fallback item or a
mapping error. An item's failure fails only the orders that need that item, with its own reason."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from connectors.quickbooks import DUPLICATE_NAME, Fault
from mappings.inputs import shown
from mappings.model import MappingError
from mappings.targets import ItemTarget, required_items
from sync.ledger import Source
from sync.narrowing import mark_shared
from sync.orders.bindings import NewBinding
from sync.orders.qb_batch import Op, fault_error

if TYPE_CHECKING:
    from sync.orders.context import OrderContext

QB = "quickbooks"


def items(ctx: OrderContext) -> None:
    """Every item the invoices of the list need, each item resolved once (``resolve``)."""
    live = ctx.live()
    ctx.begin(live, "items")
    ctx.each(live, lambda e: e.state.__setitem__("targets", required_items(e.order, ctx.rules)))
    live = [e for e in live if e.live]
    sources: dict[Source, ItemTarget] = {}
    for e in live:
        for target in e.state["targets"].values():
            sources.setdefault(item_source(target), target)
    ids, errors, created, shared = resolve(ctx, sources)
    if shared is not None:   # a lock or look-up failure: shared by every order needing those items
        mark_shared(shared, sum(1 for e in live if any(errors.get(item_source(t)) is shared
                                                       for t in e.state["targets"].values())))
    for e in live:
        made = 0
        for key, target in e.state["targets"].items():
            src = item_source(target)
            if src in errors:
                e.fail(errors[src])
                break
            e.item_ids[key] = ids[src]
            made += src in created
        if e.live:
            e.rec.record("items", "created" if made else "found", target_platform=QB, target_type="item",
                         message=f"{len(e.item_ids)} item(s), {made} created")


def item_source(target: ItemTarget) -> Source:
    """What an item target is bound as: its line's SKU or title, a special line's kind, or the named item."""
    if target.how in ("sku", "name"):
        return Source("hub", "sku", target.key)      # found by the line's own SKU or title
    if target.how in ("shipping", "tip", "fee", "gift_card"):
        return Source("hub", target.how, target.name)
    return Source("hub", "item", target.name)         # map, pattern, fallback, refund: the named item


def resolve(ctx: OrderContext, sources: dict[Source, ItemTarget]) -> tuple[
        dict[Source, str], dict[Source, BaseException], set[Source], BaseException | None]:
    """(item ids, each failed item's error, the items created, a failure of the look-ups as a whole) for
    ``sources``: bindings first, then look-ups and creates for the rest, under their locks."""
    ids = {src: b.target_id for src, b in ctx.ledger.bound(sources, QB, "item").items()}
    errors: dict[Source, BaseException] = {}
    created: set[Source] = set()
    missing = {src: t for src, t in sources.items() if src not in ids}
    shared: BaseException | None = None
    if missing:
        try:
            with ctx.lock_all([f"item:{s.type}:{s.id}" for s in missing]):
                _find_or_create_items(ctx, missing, ids, errors, created)
        except Exception as exc:  # noqa: BLE001 - a lock or look-up failure: the orders needing them retry
            shared = exc
            errors.update({src: exc for src in missing if src not in ids and src not in errors})
    return ids, errors, created, shared


def _find_or_create_items(ctx: OrderContext, missing: dict[Source, ItemTarget], ids: dict[Source, str],
                          errors: dict[Source, BaseException], created: set[Source]) -> None:
    ids.update({src: b.target_id for src, b in ctx.ledger.bound(missing, QB, "item").items()})
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
            try:   # the name is taken: that item is the one (its look-up fails only the orders needing it)
                found = ctx.qb.find_one("Item", "Name", creatable[src].name)
            except Exception as exc:  # noqa: BLE001
                errors[src] = exc
                continue
            if found:
                resolve(src, found)
            else:
                errors[src] = fault_error(answer, f"item {shown(creatable[src].name)}")
        else:
            errors[src] = fault_error(answer, f"item {shown(creatable[src].name)}") if isinstance(answer, Fault) \
                else answer
    ctx.ledger.bind_many(rows)
    for src, t in todo.items():  # not found and not creatable: the rules' fallback, or a mapping error
        if src not in ids and src not in errors:
            try:
                found = _fallback(ctx, t)
            except Exception as exc:  # noqa: BLE001 - that item's orders fail with its reason
                errors[src] = exc
                continue
            ids[src] = found["Id"]
            ctx.ledger.bind_many([NewBinding(src, QB, "item", found["Id"], {"name": found.get("Name"), "how": t.how},
                                             None)])


def _fallback(ctx: OrderContext, target: ItemTarget) -> dict[str, Any]:
    """An item neither found nor for the hub to create: the rules' fallback item, else a mapping error."""
    if target.fallback:
        found = ctx.qb.find_one("Item", "Name", target.fallback)
        if found:
            return found
        raise MappingError(f"fallback item {shown(target.fallback)} does not exist in QuickBooks",
                           rule="items.fallback_item")
    what = f"SKU {shown(target.sku)}" if target.sku else f"{shown(target.key)}"
    raise MappingError(f"{what} has no QuickBooks item: no item named {shown(target.name)} "
                       f"(rule {target.rule})", rule=target.rule)
