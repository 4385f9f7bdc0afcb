"""The HubSpot simulator's contact properties and tasks, as the CRM API v3 serves them.

* ``GET /crm/v3/properties/contacts/{name}`` (404 when missing) and ``POST /crm/v3/properties/contacts``
  (``name``, ``label``, ``type``, ``fieldType``, ``groupName`` required; 409 when it exists). A contact write
  that names a property the portal does not have is refused (400 ``VALIDATION_ERROR``,
  ``PROPERTY_DOESNT_EXIST``), as HubSpot does: custom properties must be created first.
* ``POST /crm/v3/objects/contacts/batch/update`` (≤ 100 ``{id, properties}``).
* ``POST /crm/v3/objects/tasks``: ``hs_timestamp`` (the due time) is required; ``hs_task_status``,
  ``hs_task_priority``, ``hs_task_type`` take HubSpot's values; ``associations`` to contacts (type 204)
  must name existing contacts. ``GET /crm/v3/objects/tasks/{id}``.

The simulator's clock (``sim.clock``) stamps ``createdate`` of tasks, so a test that moves it sees the task
created "on" the day it moved to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from demo.simulators.clock import SimClock

# HubSpot's own contact properties the hub (and the tests) write; hs_* properties are HubSpot's too
STANDARD_CONTACT_PROPERTIES = frozenset((
    "email", "firstname", "lastname", "phone", "mobilephone", "company", "address", "city", "state", "zip",
    "country", "website", "jobtitle", "lifecyclestage", "hubspot_owner_id", "createdate", "lastmodifieddate",
    "notes_last_updated", "total_revenue", "num_associated_deals", "recent_deal_amount", "first_deal_created_date"))
PROPERTY_TYPES = {"string": ("text", "textarea", "select", "radio", "phonenumber"), "number": ("number",),
                  "date": ("date",), "datetime": ("date",), "enumeration": ("select", "radio", "checkbox",
                                                                             "booleancheckbox")}
TASK_STATUS = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
TASK_PRIORITY = ("NONE", "LOW", "MEDIUM", "HIGH")
TASK_TYPE = ("TODO", "CALL", "EMAIL", "LINKED_IN", "MEETING")
TASK_TO_CONTACT = 204


def _error_cls() -> Any:
    from demo.simulators.hubspot import HubSpotError

    return HubSpotError


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubSpotCrmObjects:
    """Mixed into ``HubSpotSimulator`` (needs ``accounts``, ``_find``, ``_update``, ``_public``, ``_validate``)."""

    clock: SimClock

    def _reset_crm(self) -> None:
        self.clock = SimClock()
        self.properties: dict[str, dict[str, dict[str, Any]]] = {}   # hub id → name → property
        self.tasks: dict[str, dict[str, dict[str, Any]]] = {}        # hub id → task id → task
        self._next_task = 5001

    def crm_routes(self) -> list[tuple[str, str, Any, list[str]]]:
        return [("/crm/v3/properties/contacts", "property_create", self._r_property_create, ["POST"]),
                ("/crm/v3/properties/contacts/<name>", "property_one", self._r_property_one, ["GET"]),
                ("/crm/v3/objects/contacts/batch/update", "batch_update", self._r_batch_update, ["POST"]),
                ("/crm/v3/objects/tasks", "task_create", self._r_task_create, ["POST"]),
                ("/crm/v3/objects/tasks/<task_id>", "task_one", self._r_task_one, ["GET"])]

    # -- test inspection -----------------------------------------------------------------------
    def contact_properties(self, hub_id: str | int, contact_id: str) -> dict[str, Any]:
        """Every property of one contact (a copy), custom ones included."""
        with self.lock:  # type: ignore[attr-defined]
            return dict(self.accounts[str(hub_id)][str(contact_id)]["properties"])  # type: ignore[attr-defined]

    def task_list(self, hub_id: str | int) -> list[dict[str, Any]]:
        with self.lock:  # type: ignore[attr-defined]
            return [dict(t, properties=dict(t["properties"])) for t in self.tasks.get(str(hub_id), {}).values()]

    # -- property checks -----------------------------------------------------------------------
    def check_properties(self, hub: str, properties: dict[str, Any]) -> None:
        """Refuse a write naming a property the portal does not have (HubSpot's answer)."""
        known = self.properties.get(hub, {})
        missing = [k for k in properties if k not in STANDARD_CONTACT_PROPERTIES and not k.startswith("hs_")
                   and k not in known]
        if missing:
            import json

            detail = json.dumps([{"isValid": False, "message": f'Property "{k}" does not exist',
                                  "error": "PROPERTY_DOESNT_EXIST", "name": k} for k in missing])
            raise _error_cls()(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR")

    # -- views ---------------------------------------------------------------------------------
    def _r_property_one(self, hub: str, body: Any, name: str) -> tuple[int, Any]:
        prop = self.properties.get(hub, {}).get(name)
        if prop is None and name not in STANDARD_CONTACT_PROPERTIES:
            raise _error_cls()(404, f"Unable to find property {name} on object type contact", "OBJECT_NOT_FOUND")
        return 200, prop or {"name": name, "label": name, "type": "string", "fieldType": "text",
                             "groupName": "contactinformation", "hubspotDefined": True}

    def _r_property_create(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        err = _error_cls()
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise err(400, f"Invalid input JSON: {key} is required", "VALIDATION_ERROR")
        name = body["name"]
        if name in STANDARD_CONTACT_PROPERTIES or name.startswith("hs_") or name in self.properties.get(hub, {}):
            raise err(409, f"A property named '{name}' already exists.", "CONFLICT")
        if not name.replace("_", "").isalnum() or name != name.lower():
            raise err(400, f"Property name {name} must be lower-case letters, digits and _", "VALIDATION_ERROR")
        if body["fieldType"] not in PROPERTY_TYPES.get(body["type"], ()):
            raise err(400, f"fieldType {body['fieldType']} is not valid for type {body['type']}", "VALIDATION_ERROR")
        now = _stamp(self.clock.now())
        prop = {"name": name, "label": body["label"], "type": body["type"], "fieldType": body["fieldType"],
                "groupName": body["groupName"], "description": body.get("description", ""),
                "createdAt": now, "updatedAt": now, "hubspotDefined": False, "options": body.get("options", [])}
        self.properties.setdefault(hub, {})[name] = prop
        return 201, prop

    def _r_batch_update(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        err = _error_cls()
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise err(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
        if len(inputs) > 100:
            raise err(400, f"Batch input size of {len(inputs)} exceeds the limit of 100", "VALIDATION_ERROR")
        started = _stamp(self.clock.now())
        prepared = []
        for i, item in enumerate(inputs):
            if not isinstance(item, dict) or not item.get("id"):
                raise err(400, f"inputs[{i}]: id is required", "VALIDATION_ERROR")
            props = self._validate(item.get("properties") or {}, f" in inputs[{i}]")  # type: ignore[attr-defined]
            self.check_properties(hub, props)
            prepared.append((self._find(hub, str(item["id"]), None), props))  # type: ignore[attr-defined]
        results = []
        for contact, props in prepared:
            self._update(contact, props)  # type: ignore[attr-defined]
            results.append(self._public(contact, sorted(props) or None))  # type: ignore[attr-defined]
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started,
                     "completedAt": _stamp(self.clock.now())}

    def _r_task_create(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        err = _error_cls()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise err(400, "Invalid input JSON: properties is required", "VALIDATION_ERROR")
        props = {str(k): None if v is None else str(v) for k, v in props.items()}
        stamp = props.get("hs_timestamp")
        if not stamp:
            raise err(400, 'Property values were not valid: [{"isValid":false,"message":"hs_timestamp is required",'
                           '"error":"REQUIRED_FIELD","name":"hs_timestamp"}]', "VALIDATION_ERROR")
        try:
            due = (datetime.fromtimestamp(int(stamp) / 1000, UTC) if stamp.isdigit()
                   else datetime.fromisoformat(stamp.replace("Z", "+00:00")))
        except (ValueError, OverflowError):
            raise err(400, f"Property values were not valid: hs_timestamp {stamp!r} is not a date-time",
                      "VALIDATION_ERROR") from None
        for key, allowed in (("hs_task_status", TASK_STATUS), ("hs_task_priority", TASK_PRIORITY),
                             ("hs_task_type", TASK_TYPE)):
            if props.get(key) is not None and props[key] not in allowed:
                raise err(400, f"Property values were not valid: {props[key]} is not an allowed value of {key}",
                          "VALIDATION_ERROR")
        contacts = []
        for assoc in body.get("associations") or []:
            to = str(((assoc or {}).get("to") or {}).get("id") or "")
            types = [t.get("associationTypeId") for t in (assoc.get("types") or []) if isinstance(t, dict)]
            if TASK_TO_CONTACT not in types:
                raise err(400, f"association type {types} is not task → contact ({TASK_TO_CONTACT})",
                          "VALIDATION_ERROR")
            if to not in self.accounts[hub]:  # type: ignore[attr-defined]
                raise err(400, f"Could not find contact {to} to associate", "VALIDATION_ERROR")
            contacts.append(to)
        task_id = str(self._next_task)
        self._next_task += 1
        now = _stamp(self.clock.now())
        task = {"id": task_id, "properties": {**{k: v for k, v in props.items() if v is not None},
                                              "hs_timestamp": _stamp(due), "hs_object_id": task_id,
                                              "hs_task_status": props.get("hs_task_status") or "NOT_STARTED",
                                              "hs_createdate": now, "hs_lastmodifieddate": now},
                "createdAt": now, "updatedAt": now, "archived": False, "contacts": contacts}
        self.tasks.setdefault(hub, {})[task_id] = task
        return 201, {k: v for k, v in task.items() if k != "contacts"}

    def _r_task_one(self, hub: str, body: Any, task_id: str) -> tuple[int, Any]:
        task = self.tasks.get(hub, {}).get(task_id)
        if task is None:
            raise _error_cls()(404, "resource not found", "OBJECT_NOT_FOUND")
        return 200, {k: v for k, v in task.items() if k != "contacts"}
