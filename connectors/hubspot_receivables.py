"""HubSpot calls of the receivables work: custom contact properties (read, created when missing), contact
properties written in batches of 100, and tasks for a contact (``hs_timestamp`` = due, required).

Mixed into ``connectors.hubspot.HubSpotClient``; API only, no business rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import urllib3
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
from hubspot.crm.objects.tasks import ApiException as TasksApiException
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate

from connectors import redact
from connectors.errors import Retryable, with_excerpt

PLATFORM = "hubspot"
BATCH_LIMIT = 100
TASK_TO_CONTACT = 204          # HubSpot-defined association type: task → contact
_API_ERRORS = (ContactsApiException, TasksApiException, PropertiesApiException)


class ReceivablesCalls:
    """Needs ``self._client`` (hubspot.Client), ``self._throttle``, ``self._host`` and ``self._timeout``."""

    _client: Any
    _throttle: Callable[[], object] | None
    _host: str
    _timeout: float

    def _hs(self, method: str, path: str, body: Any, fn: Callable[[], Any]) -> Any:
        from connectors.hubspot import _api_error

        if self._throttle:
            self._throttle()
        try:
            return fn()
        except _API_ERRORS as exc:
            call = redact.excerpt(method, self._host + path, body, exc.status, exc.body)
            raise with_excerpt(_api_error(exc), call) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retryable("cannot reach HubSpot", platform=PLATFORM) from exc

    def contact_property_exists(self, name: str) -> bool:
        path = f"/crm/v3/properties/contacts/{name}"
        try:
            self._hs("GET", path, None, lambda: self._client.crm.properties.core_api.get_by_name(
                "contacts", name, _request_timeout=self._timeout))
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise
        return True

    def create_contact_property(self, name: str, label: str, type_: str, field_type: str, *,
                                group: str = "contactinformation", description: str = "") -> None:
        body = PropertyCreate(name=name, label=label, type=type_, field_type=field_type, group_name=group,
                              description=description)
        try:
            self._hs("POST", "/crm/v3/properties/contacts", body.to_dict(), lambda: self._client.crm.properties
                     .core_api.create("contacts", property_create=body, _request_timeout=self._timeout))
        except Exception as exc:
            if getattr(exc, "status", None) != 409:     # created meanwhile by another worker: what we wanted
                raise

    def update_contacts(self, updates: dict[str, dict[str, str]]) -> None:
        """``{contact id: {property: value}}`` written in batches of 100 ("" clears a property)."""
        items = list(updates.items())
        for start in range(0, len(items), BATCH_LIMIT):
            body = BatchInputSimplePublicObjectBatchInput(inputs=[
                SimplePublicObjectBatchInput(id=cid, properties=props)
                for cid, props in items[start:start + BATCH_LIMIT]])
            self._hs("POST", "/crm/v3/objects/contacts/batch/update", body.to_dict(),
                     lambda body=body: self._client.crm.contacts.batch_api.update(
                         batch_input_simple_public_object_batch_input=body, _request_timeout=self._timeout))

    def contact_owner(self, contact_id: str) -> str | None:
        """The contact's owner (``hubspot_owner_id``), if any."""
        path = f"/crm/v3/objects/contacts/{contact_id}"
        found = self._hs("GET", path, None, lambda: self._client.crm.contacts.basic_api.get_by_id(
            contact_id, properties=["hubspot_owner_id"], _request_timeout=self._timeout))
        return ((found.properties or {}).get("hubspot_owner_id")) or None

    def create_task(self, contact_id: str, *, subject: str, body: str, due: datetime, owner_id: str | None = None,
                    priority: str = "MEDIUM") -> str:
        """A to-do task associated to the contact; returns its id."""
        props = {"hs_timestamp": due.isoformat().replace("+00:00", "Z"), "hs_task_subject": subject,
                 "hs_task_body": body, "hs_task_status": "NOT_STARTED", "hs_task_priority": priority,
                 "hs_task_type": "TODO"}
        if owner_id:
            props["hubspot_owner_id"] = owner_id
        create = SimplePublicObjectInputForCreate(properties=props, associations=[PublicAssociationsForObject(
            to=PublicObjectId(id=contact_id),
            types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=TASK_TO_CONTACT)])])
        made = self._hs("POST", "/crm/v3/objects/tasks", create.to_dict(),
                        lambda: self._client.crm.objects.tasks.basic_api.create(
                            simple_public_object_input_for_create=create, _request_timeout=self._timeout))
        return str(made.id)
