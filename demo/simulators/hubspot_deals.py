"""HubSpot's deals, line items, deal pipelines, deal properties and v4 associations, as strict as the real
API is documented (``../shared/PLATFORMS.md``, "HubSpot deals and commerce objects"):

* ``GET /crm/v3/pipelines/deals``: the portal's pipelines (the default one with HubSpot's default stages
  and their ``probability``: 1.0 closed won, 0.0 closed lost);
* ``GET /crm/v3/properties/deals/{name}``, ``POST /crm/v3/properties/deals``: custom deal properties,
  ``hasUniqueValue`` for the ones an upsert may key on;
* ``POST /crm/v3/objects/deals/batch/upsert`` (≤ 100, ``idProperty`` must be a unique property; the
  pipeline and stage must exist; ``new`` on each result), ``POST /crm/v3/objects/deals/batch/read``;
* ``POST /crm/v3/objects/line_items/batch/create`` (≤ 100; ``price`` and ``quantity`` ≥ 0; at most one
  deal parent, association type 20), ``POST /crm/v3/objects/line_items/batch/read``;
* ``POST /crm/v4/associations/deals/contacts/batch/associate/default`` (deal → contact, type 3, and the
  reverse, 4) and ``POST /crm/v4/associations/deals/line_items/batch/read``.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any

BATCH_LIMIT = 100
DEAL_TO_CONTACT, CONTACT_TO_DEAL, DEAL_TO_LINE_ITEM, LINE_ITEM_TO_DEAL = 3, 4, 19, 20
CONTACT_TO_COMPANY, DEAL_TO_COMPANY, COMPANY_TO_DEAL = 1, 5, 6
_SINGULAR = {"contacts": "contact", "companies": "company"}
DEFAULT_STAGES = (("appointmentscheduled", "Appointment scheduled", "0.2"),
                  ("qualifiedtobuy", "Qualified to buy", "0.4"),
                  ("presentationscheduled", "Presentation scheduled", "0.6"),
                  ("decisionmakerboughtin", "Decision maker bought-in", "0.8"),
                  ("contractsent", "Contract sent", "0.9"),
                  ("closedwon", "Closed won", "1.0"),
                  ("closedlost", "Closed lost", "0.0"))
DEAL_PROPERTIES = ("dealname", "amount", "pipeline", "dealstage", "closedate", "deal_currency_code",
                   "description", "hubspot_owner_id", "hs_object_id", "createdate", "hs_lastmodifieddate")
LINE_ITEM_PROPERTIES = ("name", "quantity", "price", "hs_sku", "discount", "hs_discount_percentage", "description",
                        "hs_product_id", "hs_object_id", "createdate", "hs_lastmodifieddate")


class DealsMixin:
    """Mixed into ``HubSpotSimulator``: per portal, ``crm[hub]`` holds deals, line items, associations,
    pipelines and deal properties."""

    crm: dict[str, dict[str, Any]]

    def _crm(self, hub: str) -> dict[str, Any]:
        if hub not in self.crm:
            self.crm[hub] = {"deals": {}, "line_items": {}, "companies": {}, "assoc": set(), "properties": {},
                             "pipelines": [{"id": "default", "label": "Sales Pipeline", "displayOrder": 0,
                                            "stages": [{"id": i, "label": label, "displayOrder": n,
                                                        "metadata": {"probability": p, "isClosed":
                                                                     str(p in ("1.0", "0.0")).lower()}}
                                                       for n, (i, label, p) in enumerate(DEFAULT_STAGES)]}]}
        return self.crm[hub]

    # -- test controls -------------------------------------------------------------------------------
    def add_pipeline(self, hub_id: str | int, pipeline_id: str, stages: list[tuple[str, str, str]]) -> None:
        """A custom deal pipeline: ``stages`` as (id, label, probability)."""
        with self.lock:
            self._crm(str(hub_id))["pipelines"].append(
                {"id": pipeline_id, "label": pipeline_id.title(), "displayOrder": 1,
                 "stages": [{"id": i, "label": label, "displayOrder": n, "metadata": {"probability": p}}
                            for n, (i, label, p) in enumerate(stages)]})

    def add_company(self, hub_id: str | int, name: str, *, contact_id: str | None = None) -> str:
        """A company (the buyer's employer), associated with ``contact_id`` as its primary company."""
        with self.lock:
            crm = self._crm(str(hub_id))
            company = self._new_object(crm["companies"], {"name": name})
            if contact_id is not None:
                crm["assoc"].add(("contacts", str(contact_id), "companies", company["id"], CONTACT_TO_COMPANY))
            return company["id"]

    def deal_companies(self, hub_id: str | int, deal_id: str) -> list[str]:
        with self.lock:
            return sorted(t for (ft, f, tt, t, k) in self._crm(str(hub_id))["assoc"]
                          if ft == "deals" and f == deal_id and tt == "companies" and k == DEAL_TO_COMPANY)

    def deals(self, hub_id: str | int) -> list[dict[str, Any]]:
        with self.lock:
            return [self._public_object(d) for d in self._crm(str(hub_id))["deals"].values()]

    def line_items_of(self, hub_id: str | int, deal_id: str) -> list[dict[str, Any]]:
        with self.lock:
            crm = self._crm(str(hub_id))
            ids = [t for (ft, f, tt, t, k) in crm["assoc"] if ft == "deals" and f == deal_id
                   and tt == "line_items" and k == DEAL_TO_LINE_ITEM]
            return [self._public_object(crm["line_items"][i]) for i in sorted(ids, key=int)]

    def deal_contacts(self, hub_id: str | int, deal_id: str) -> list[str]:
        with self.lock:
            return sorted(t for (ft, f, tt, t, k) in self._crm(str(hub_id))["assoc"]
                          if ft == "deals" and f == deal_id and tt == "contacts" and k == DEAL_TO_CONTACT)

    # -- routes --------------------------------------------------------------------------------------
    def register_deal_routes(self) -> None:
        rules = [
            ("/crm/v3/pipelines/deals", "deal_pipelines", self._r_pipelines, ["GET"]),
            ("/crm/v3/properties/deals", "deal_property_create", self._r_deal_property_create, ["POST"]),
            ("/crm/v3/properties/deals/<name>", "deal_property", self._r_deal_property, ["GET"]),
            ("/crm/v3/objects/deals/batch/upsert", "deal_upsert", self._r_deal_upsert, ["POST"]),
            ("/crm/v3/objects/deals/batch/read", "deal_read", self._r_deal_read, ["POST"]),
            ("/crm/v3/objects/line_items/batch/create", "line_item_create", self._r_line_items_create, ["POST"]),
            ("/crm/v3/objects/line_items/batch/read", "line_item_read", self._r_line_items_read, ["POST"]),
            ("/crm/v4/associations/deals/contacts/batch/associate/default", "deal_contact_assoc",
             self._r_associate_contacts, ["POST"]),
            ("/crm/v4/associations/deals/line_items/batch/read", "deal_line_item_assoc",
             self._r_deal_line_items, ["POST"]),
            ("/crm/v4/associations/contacts/companies/batch/read", "contact_company_assoc",
             self._r_contact_companies, ["POST"]),
            ("/crm/v4/associations/deals/companies/batch/associate/default", "deal_company_assoc",
             self._r_associate_companies, ["POST"]),
        ]
        for path, endpoint, view, methods in rules:
            self.app.add_url_rule(path, endpoint, self._guarded(view), methods=methods)

    # -- helpers -------------------------------------------------------------------------------------
    def _public_object(self, obj: dict[str, Any], properties: list[str] | None = None) -> dict[str, Any]:
        props = obj["properties"]
        shown = {k: props.get(k) for k in properties} if properties else dict(props)
        shown["hs_object_id"] = obj["id"]
        return {"id": obj["id"], "properties": shown, "createdAt": obj["createdAt"], "updatedAt": obj["updatedAt"],
                "archived": False}

    def _new_object(self, store: dict[str, Any], properties: dict[str, str]) -> dict[str, Any]:
        from demo.simulators.hubspot import _now_iso

        oid = str(self._next_id)
        self._next_id += 1
        now = _now_iso()
        obj = {"id": oid, "properties": {**properties, "createdate": now, "hs_lastmodifieddate": now},
               "createdAt": now, "updatedAt": now, "_mono": time.monotonic()}
        store[oid] = obj
        return obj

    def _inputs(self, body: dict[str, Any]) -> list[Any]:
        from demo.simulators.hubspot import HubSpotError

        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise HubSpotError(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
        if len(inputs) > BATCH_LIMIT:
            raise HubSpotError(400, f"Batch input size of {len(inputs)} exceeds the limit of {BATCH_LIMIT}",
                               "VALIDATION_ERROR")
        return inputs

    @staticmethod
    def _props(raw: Any, where: str) -> dict[str, str]:
        from demo.simulators.hubspot import HubSpotError

        if not isinstance(raw, dict):
            raise HubSpotError(400, f"Invalid input JSON{where}: properties must be an object", "VALIDATION_ERROR")
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}

    @staticmethod
    def _known(props: dict[str, str], known: tuple[str, ...], where: str) -> None:
        from demo.simulators.hubspot import HubSpotError

        unknown = sorted(set(props) - set(known))
        if unknown:
            raise HubSpotError(400, f"Property values were not valid{where}: Property \"{unknown[0]}\" does not "
                                    "exist", "VALIDATION_ERROR", errors=[{"code": "PROPERTY_DOESNT_EXIST",
                                                                          "context": {"propertyName": unknown}}])

    @staticmethod
    def _number(value: str | None, name: str, where: str, *, minimum: Decimal | None = None) -> None:
        from demo.simulators.hubspot import HubSpotError

        if value in (None, ""):
            return
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise HubSpotError(400, f"Property values were not valid{where}: {value!r} is not a valid number "
                                    f"for {name}", "VALIDATION_ERROR") from None
        if minimum is not None and number < minimum:
            raise HubSpotError(400, f"Property values were not valid{where}: {name} must be at least {minimum}",
                               "VALIDATION_ERROR")

    # -- views (lock held) ---------------------------------------------------------------------------
    def _r_pipelines(self, hub: str, body: Any) -> tuple[int, Any]:
        return 200, {"results": self._crm(hub)["pipelines"]}

    def _r_deal_property(self, hub: str, body: Any, name: str) -> tuple[int, Any]:
        from demo.simulators.hubspot import HubSpotError

        prop = self._crm(hub)["properties"].get(name)
        if prop is None and name not in DEAL_PROPERTIES:
            raise HubSpotError(404, f"Unable to find property {name} for object type deals",
                               "OBJECT_NOT_FOUND")
        return 200, prop or {"name": name, "type": "string", "hasUniqueValue": False}

    def _r_deal_property_create(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        from demo.simulators.hubspot import HubSpotError

        name = str(body.get("name") or "")
        if not name or not body.get("label") or not body.get("type") or not body.get("fieldType") \
                or not body.get("groupName"):
            raise HubSpotError(400, "name, label, type, fieldType and groupName are required", "VALIDATION_ERROR")
        props = self._crm(hub)["properties"]
        if name in props or name in DEAL_PROPERTIES:
            raise HubSpotError(409, f"A property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        props[name] = {k: body.get(k) for k in ("name", "label", "type", "fieldType", "groupName")} | {
            "hasUniqueValue": bool(body.get("hasUniqueValue"))}
        return 201, props[name]

    def _r_deal_upsert(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        from demo.simulators.hubspot import HubSpotError, _now_iso

        crm = self._crm(hub)
        started = _now_iso()
        prepared, seen = [], set()
        for i, item in enumerate(self._inputs(body)):
            where = f" in inputs[{i}]"
            id_property = item.get("idProperty") if isinstance(item, dict) else None
            prop = crm["properties"].get(str(id_property))
            if not id_property or not item.get("id"):
                raise HubSpotError(400, f"inputs[{i}]: upsert needs an idProperty and an id", "VALIDATION_ERROR")
            if prop is None or not prop.get("hasUniqueValue"):
                raise HubSpotError(400, f"{id_property} is not a unique identifier property for deals",
                                   "VALIDATION_ERROR")
            key = str(item["id"])
            if key in seen:
                raise HubSpotError(400, f"Duplicate IDs found in batch input: [{key}]. IDs must be unique",
                                   "VALIDATION_ERROR")
            seen.add(key)
            props = {**self._props(item.get("properties") or {}, where), str(id_property): key}
            self._known(props, DEAL_PROPERTIES + tuple(crm["properties"]), where)
            self._number(props.get("amount"), "amount", where)
            current = next((d for d in crm["deals"].values() if d["properties"].get(id_property) == key), None)
            pipeline_id = props.get("pipeline") or (current or {}).get("properties", {}).get("pipeline") or "default"
            pipeline = next((p for p in crm["pipelines"] if p["id"] == pipeline_id), None)
            if pipeline is None:
                raise HubSpotError(400, f"Property values were not valid{where}: {pipeline_id} is not a valid "
                                        "pipeline", "VALIDATION_ERROR")
            stage = props.get("dealstage")
            if stage and stage not in {s["id"] for s in pipeline["stages"]}:
                raise HubSpotError(400, f"Property values were not valid{where}: {stage} is not a valid deal stage "
                                        f"of pipeline {pipeline_id}", "VALIDATION_ERROR")
            prepared.append((current, props))
        results = []
        for current, props in prepared:
            new = current is None
            if new:
                current = self._new_object(crm["deals"], {"pipeline": "default", **props})
            else:
                current["properties"].update({k: v for k, v in props.items() if v != ""})
                current["properties"]["hs_lastmodifieddate"] = current["updatedAt"] = _now_iso()
            out = self._public_object(current)
            out["new"] = new
            results.append(out)
        return 200, {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now_iso()}

    def _r_deal_read(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._read(self._crm(hub)["deals"], body)

    def _r_line_items_read(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._read(self._crm(hub)["line_items"], body)

    def _read(self, store: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        from demo.simulators.hubspot import _now_iso

        wanted = [str(p) for p in body.get("properties") or []]
        id_property = body.get("idProperty")
        results = []
        for item in self._inputs(body):
            key = str((item or {}).get("id", ""))
            obj = store.get(key) if not id_property else next(
                (o for o in store.values() if o["properties"].get(id_property) == key), None)
            if obj is not None:
                results.append(self._public_object(obj, wanted or None))
        return 200, {"status": "COMPLETE", "results": results, "startedAt": _now_iso(), "completedAt": _now_iso()}

    def _r_line_items_create(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        from demo.simulators.hubspot import HubSpotError, _now_iso

        crm = self._crm(hub)
        prepared = []
        for i, item in enumerate(self._inputs(body)):
            where = f" in inputs[{i}]"
            props = self._props((item or {}).get("properties") or {}, where)
            self._known(props, LINE_ITEM_PROPERTIES, where)
            if not props.get("name"):
                raise HubSpotError(400, f"Property values were not valid{where}: name is required",
                                   "VALIDATION_ERROR")
            self._number(props.get("price"), "price", where, minimum=Decimal("0"))
            self._number(props.get("quantity"), "quantity", where, minimum=Decimal("0"))
            parents = []
            for a in (item or {}).get("associations") or []:
                to = str(((a or {}).get("to") or {}).get("id", ""))
                types = [t.get("associationTypeId") for t in (a or {}).get("types") or []]
                if LINE_ITEM_TO_DEAL in types:
                    if to not in crm["deals"]:
                        raise HubSpotError(400, f"deal {to} does not exist{where}", "VALIDATION_ERROR")
                    parents.append(to)
            if len(parents) > 1:
                raise HubSpotError(400, f"A line item can be associated with one deal only{where}",
                                   "VALIDATION_ERROR")
            prepared.append((props, parents))
        results = []
        for props, parents in prepared:
            obj = self._new_object(crm["line_items"], props)
            for deal in parents:
                crm["assoc"].add(("line_items", obj["id"], "deals", deal, LINE_ITEM_TO_DEAL))
                crm["assoc"].add(("deals", deal, "line_items", obj["id"], DEAL_TO_LINE_ITEM))
            results.append(self._public_object(obj))
        return 201, {"status": "COMPLETE", "results": results, "startedAt": _now_iso(), "completedAt": _now_iso()}

    def _r_associate_contacts(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        from demo.simulators.hubspot import _now_iso

        pairs = self._associate(hub, body, "contacts", self.accounts.get(hub, {}), DEAL_TO_CONTACT, CONTACT_TO_DEAL)
        return 200, {"status": "COMPLETE", "results": [
            {"fromObjectTypeId": "0-3", "fromObjectId": int(d), "toObjectTypeId": "0-1", "toObjectId": int(c),
             "labels": []} for d, c in pairs], "startedAt": _now_iso(), "completedAt": _now_iso()}

    def _associate(self, hub: str, body: dict[str, Any], to_type: str, existing: dict[str, Any], forward: int,
                   back: int) -> list[tuple[str, str]]:
        """``POST /crm/v4/associations/deals/{to_type}/batch/associate/default``: every pair checked first
        (a deal or target that does not exist refuses the whole batch), then associated both ways."""
        from demo.simulators.hubspot import HubSpotError

        crm = self._crm(hub)
        pairs = []
        for i, item in enumerate(self._inputs(body)):
            deal = str(((item or {}).get("from") or {}).get("id", ""))
            target = str(((item or {}).get("to") or {}).get("id", ""))
            if deal not in crm["deals"] or target not in existing:
                raise HubSpotError(400, f"inputs[{i}]: deal {deal} or {_SINGULAR[to_type]} {target} does not exist",
                                   "VALIDATION_ERROR")
            pairs.append((deal, target))
        for deal, target in pairs:
            crm["assoc"].add(("deals", deal, to_type, target, forward))
            crm["assoc"].add((to_type, target, "deals", deal, back))
        return pairs

    def _r_deal_line_items(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._read_associations(hub, body, "deals", "line_items")

    def _read_associations(self, hub: str, body: dict[str, Any], from_type: str, to_type: str) -> tuple[int, Any]:
        """``POST /crm/v4/associations/{from}/{to}/batch/read``: each input's associated objects."""
        from demo.simulators.hubspot import _now_iso

        crm = self._crm(hub)
        results = []
        for item in self._inputs(body):
            source = str((item or {}).get("id", ""))
            to = [{"toObjectId": int(t), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": k}]}
                  for (ft, f, tt, t, k) in sorted(crm["assoc"]) if ft == from_type and f == source and tt == to_type]
            if to:
                results.append({"from": {"id": source}, "to": to})
        return 200, {"status": "COMPLETE", "results": results, "startedAt": _now_iso(), "completedAt": _now_iso()}

    def _r_contact_companies(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._read_associations(hub, body, "contacts", "companies")

    def _r_associate_companies(self, hub: str, body: dict[str, Any]) -> tuple[int, Any]:
        from demo.simulators.hubspot import _now_iso

        self._associate(hub, body, "companies", self._crm(hub)["companies"], DEAL_TO_COMPANY, COMPANY_TO_DEAL)
        return 200, {"status": "COMPLETE", "results": [], "startedAt": _now_iso(), "completedAt": _now_iso()}
