"""Scalar readers for Shopify GraphQL values (money bags, dates, ids, connections). Pure: no I/O.
Each raises ``MappingError`` naming the field when a value is malformed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mappings.inputs import shown
from mappings.model import MappingError, to_money

__all__ = ["_str", "_gid_tail", "_dig", "_dig_obj", "_nodes", "_money", "_rate", "_datetime"]



def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    s = str(value).strip()
    return s or None


def _gid_tail(gid: str | None) -> str | None:
    if not gid:
        return None
    tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
    return tail or None


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _dig_obj(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _nodes(conn: Any, field: str, where: str) -> list:
    if isinstance(conn, list):  # already a list of nodes
        return conn
    if not isinstance(conn, dict):
        raise MappingError(f"{where}: {field} is not a connection", rule=f"order.{field}")
    if "nodes" in conn:
        nodes = conn["nodes"] or []
    elif "edges" in conn:
        nodes = [e.get("node") if isinstance(e, dict) else e for e in conn["edges"] or []]
    else:
        nodes = []
    if not isinstance(nodes, list):
        raise MappingError(f"{where}: {field}.nodes is not a list", rule=f"order.{field}")
    return nodes


def _money(bag: Any, field: str, currency: str, where: str, *, required: bool = False) -> Decimal:
    """The ``shopMoney.amount`` of a MoneyBag (or a bare MoneyV2 / amount) as Decimal cents."""
    raw = bag
    if isinstance(raw, dict):
        raw = raw.get("shopMoney", raw)
        raw = raw.get("amount") if isinstance(raw, dict) else None
    if raw is None or raw == "":
        if required:
            raise MappingError(f"{where}: {field} is missing an amount", rule=field)
        return to_money(None, currency)
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise MappingError(f"{where}: {field} amount {shown(raw)} is not a number", rule=field)
    try:
        value = Decimal(str(raw).strip())  # floats via their shortest repr: never float arithmetic
    except InvalidOperation:
        raise MappingError(f"{where}: {field} amount {shown(raw)} is not a number", rule=field) from None
    if not value.is_finite():
        raise MappingError(f"{where}: {field} amount {shown(raw)} is not a number", rule=field)
    return to_money(value, currency)


def _rate(value: Any, where: str, label: str) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MappingError(f"{where}: {label} rate {shown(value)} is not a number", rule="taxLines.rate")
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(f"{where}: {label} rate {shown(value)} is not a number", rule="taxLines.rate") from None
    if not rate.is_finite():
        raise MappingError(f"{where}: {label} rate {shown(value)} is not a number", rule="taxLines.rate")
    return rate


def _datetime(value: Any, field: str, where: str, *, required: bool = False) -> datetime | None:
    if value is None or value == "":
        if required:
            raise MappingError(f"{where} has no {field}", rule=f"order.{field}")
        return None
    if not isinstance(value, str):
        raise MappingError(f"{where}: {field} {shown(value)} is not an ISO 8601 date-time", rule=f"order.{field}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MappingError(f"{where}: {field} {shown(value)} is not an ISO 8601 date-time",
                           rule=f"order.{field}") from None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    try:
        dt.astimezone(UTC)   # compared and stored in UTC: a time that can't be taken there is refused here
    except OverflowError:
        raise MappingError(f"{where}: {field} {shown(value)} is out of range once taken to UTC",
                           rule=f"order.{field}") from None
    return dt
