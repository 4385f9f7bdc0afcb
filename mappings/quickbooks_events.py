"""QuickBooks webhook notifications → entity changes. Pure: no I/O.

Both payloads Intuit sends are accepted: the classic ``{"eventNotifications": [{"realmId",
"dataChangeEvent": {"entities": [{"name", "id", "operation", "lastUpdated"}]}}]}`` and the CloudEvents
array ``[{"specversion": "1.0", "id", "type": "qbo.payment.created.v1", "intuitentityid",
"intuitaccountid", "time", …}]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mappings.inputs import shown
from mappings.model import MappingError

# entity names as the API spells them, keyed by their lower-case form in CloudEvents types
ENTITY_NAMES = {n.lower(): n for n in ("Payment", "Invoice", "Customer", "Item", "CreditMemo", "RefundReceipt",
                                       "SalesReceipt", "Deposit", "JournalEntry", "Account", "Estimate")}
OPERATIONS = {"create": "Create", "created": "Create", "update": "Update", "updated": "Update",
              "delete": "Delete", "deleted": "Delete", "void": "Void", "voided": "Void", "merge": "Merge",
              "merged": "Merge", "emailed": "Emailed"}
MAX_CHANGES = 1000


@dataclass(frozen=True)
class EntityChange:
    realm_id: str
    entity: str          # "Payment"
    id: str
    operation: str       # Create | Update | Delete | Void | Merge | Emailed
    at: str | None       # lastUpdated / time, as sent
    event_id: str | None = None  # the CloudEvents id (None for classic notifications)


def parse_notifications(payload: Any) -> list[EntityChange]:
    """Every entity change in a notification body; ``MappingError`` when the body is neither format."""
    if isinstance(payload, dict) and "eventNotifications" in payload:
        changes = _classic(payload["eventNotifications"])
    elif isinstance(payload, list):
        changes = _cloudevents(payload)
    elif isinstance(payload, dict) and payload.get("specversion"):
        changes = _cloudevents([payload])
    else:
        raise MappingError("not a QuickBooks notification (neither eventNotifications nor CloudEvents)",
                           rule="webhook")
    if len(changes) > MAX_CHANGES:
        raise MappingError(f"notification lists {len(changes)} changes (at most {MAX_CHANGES})", rule="webhook")
    return changes


def _classic(notifications: Any) -> list[EntityChange]:
    if not isinstance(notifications, list):
        raise MappingError("eventNotifications must be a list", rule="webhook")
    out = []
    for n in notifications:
        if not isinstance(n, dict):
            raise MappingError("each event notification must be an object", rule="webhook")
        realm = _id(n.get("realmId"), "realmId")
        entities = (n.get("dataChangeEvent") or {}).get("entities") if isinstance(n.get("dataChangeEvent"),
                                                                                    dict) else None
        if not isinstance(entities, list):
            raise MappingError("dataChangeEvent.entities must be a list", rule="webhook")
        for e in entities:
            if not isinstance(e, dict):
                raise MappingError("each changed entity must be an object", rule="webhook")
            name = ENTITY_NAMES.get(str(e.get("name") or "").lower(), str(e.get("name") or "")[:40])
            operation = OPERATIONS.get(str(e.get("operation") or "").lower(), str(e.get("operation") or "")[:20])
            out.append(EntityChange(realm, name, _id(e.get("id"), "id"), operation,
                                    str(e.get("lastUpdated"))[:40] if e.get("lastUpdated") else None))
    return out


def _cloudevents(events: list[Any]) -> list[EntityChange]:
    out = []
    for ev in events:
        if not isinstance(ev, dict):
            raise MappingError("each CloudEvent must be an object", rule="webhook")
        kind = str(ev.get("type") or "")
        parts = kind.split(".")
        if len(parts) < 3 or parts[0] != "qbo":
            raise MappingError(f"CloudEvent type {shown(kind[:60])} is not a QuickBooks event (qbo.<entity>.<op>.v1)",
                               rule="webhook")
        name = ENTITY_NAMES.get(parts[1].lower(), parts[1][:40])
        operation = OPERATIONS.get(parts[2].lower(), parts[2][:20])
        out.append(EntityChange(_id(ev.get("intuitaccountid"), "intuitaccountid"), name,
                                _id(ev.get("intuitentityid"), "intuitentityid"), operation,
                                str(ev.get("time"))[:40] if ev.get("time") else None,
                                str(ev.get("id"))[:100] if ev.get("id") else None))
    return out


def _id(value: Any, field: str) -> str:
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    if not text or len(text) > 40 or not all(c.isalnum() or c in "-_" for c in text):
        raise MappingError(f"{field} is missing or not an id ({shown(text[:40])})", rule="webhook")
    return text
