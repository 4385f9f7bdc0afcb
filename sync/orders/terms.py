"""Payment terms on the invoice (part of the invoices step): an order on terms gets the QuickBooks term
``Net N`` (found by name, else created; bound, so later orders ask QuickBooks nothing) as its
``SalesTermRef`` and its ``DueDate``; an order paid at checkout stays due on receipt.

The terms are decided when the invoice is first created and kept on the invoice binding (``term``,
``term_id``, ``due_date``): an update of the order (a payment, an edit) sends the same terms again, so the
fingerprint is stable and a paid order's invoice keeps the due date it was issued with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mappings.receivables import InvoiceTerms, invoice_terms, with_terms
from sync.ledger import Source

if TYPE_CHECKING:
    from sync.orders.context import Entry, OrderContext

QB = "quickbooks"


def with_invoice_terms(ctx: OrderContext, e: Entry, payload: dict[str, Any], binding: Any) -> dict[str, Any]:
    """``payload`` with the order's terms (``e.state["terms"]`` records them for the invoice binding)."""
    assert e.order is not None
    if binding is not None:
        data = binding.data or {}
        if data.get("term_id") and data.get("due_date"):
            e.state["terms"] = {k: data.get(k) for k in ("term", "term_id", "due_date")}
            return with_terms(payload, data["term_id"], data["due_date"])
        if not _due_at_fulfilment(e):
            return payload                              # issued due on receipt: it stays so
        # terms that run from fulfilment: the first shipment sets the due date now (below)
    terms = invoice_terms(e.order, ctx.rules.receivables)
    if terms is None:
        return payload
    term_id = term_id_for(ctx, terms)
    e.state["terms"] = {"term": terms.name, "term_id": term_id, "due_date": terms.due_date.isoformat()}
    return with_terms(payload, term_id, terms.due_date.isoformat())


def _due_at_fulfilment(e: Entry) -> bool:
    """The order's terms run from fulfilment (Shopify FULFILLMENT) and the goods have left."""
    assert e.order is not None
    terms = e.order.payment_terms or {}
    return str(terms.get("type") or "").upper() == "FULFILLMENT" and bool(e.order.shipments)


def term_id_for(ctx: OrderContext, terms: InvoiceTerms) -> str:
    """The id of the QuickBooks term ``Net N``: bound, else found by name, else created (requestid)."""
    source = Source("hub", "term", terms.name)
    bound = ctx.ledger.target_id(source, QB, "term")
    if bound:
        return bound
    with ctx.lock(f"term:{terms.name}"):
        found = ctx.qb.find_one("Term", "Name", terms.name)
        if found is None or (found.get("Type") == "STANDARD" and int(found.get("DueDays") or 0) != terms.due_days):
            if found is not None:   # a term of that name with other days: ours gets its own name
                terms = InvoiceTerms(f"{terms.name} days", terms.due_days, terms.due_date)
                found = ctx.qb.find_one("Term", "Name", terms.name)
            found = found or ctx.qb.create("Term", {"Name": terms.name, "Type": "STANDARD",
                                                    "DueDays": terms.due_days, "Active": True},
                                           request_id=ctx.rid("term", str(terms.due_days)))
        ctx.ledger.bind(source, QB, "term", found["Id"], data={"name": terms.name, "due_days": terms.due_days})
    return found["Id"]
