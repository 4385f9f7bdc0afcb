"""Plain-text rendering of a preview (``o2c preview``): the order, then every request the hub would
send, with each amount's origin where the mapping traced it."""

from __future__ import annotations

import json
from typing import Any


def render_preview(data: dict[str, Any]) -> str:
    order = data["order"]
    out = [f"{order['platform']} order {order['name']} (id {order['source_id']}), {order['currency']}, "
           f"total {order['total']}, tax {order['total_tax']}, {order['financial_status']}",
           f"mapping rules version {data['rules_version']}", ""]
    out.append("Lines:")
    for i, ln in enumerate(order["lines"]):
        out.append(f"  lines[{i}] {ln['quantity']} × {ln['unit_price']}  {ln['title']}"
                   f"{'  SKU ' + ln['sku'] if ln.get('sku') else ''}"
                   f"{'  discount ' + ln['discount'] if ln.get('discount') not in (None, '0', '0.00') else ''}")
    for i, sh in enumerate(order.get("shipping_lines") or []):
        out.append(f"  shipping_lines[{i}] {sh['amount']}  {sh['title']}")
    for i, fee in enumerate(order.get("fee_lines") or []):
        out.append(f"  fee_lines[{i}] {fee['amount']}  {fee['title']} ({fee['kind']})")
    out.append("")
    if data.get("error"):
        out += [f"A sync would fail now: {data['error']}", ""]
    out.append("Steps:")
    for st in data["steps"]:
        target = st.get("target")
        where = f" → {target['platform']} {target['type']} {target['id']}" if target else ""
        out.append(f"  {st['step']:<9} {st['outcome']:<10}{where}{'  ' + st['message'] if st.get('message') else ''}")
    out.append("")
    if not data["requests"]:
        out.append("Nothing would be sent: everything is up to date.")
    for req in data["requests"]:
        out.append(f"Would {req['operation']} {req['platform']} {req['entity']}:")
        out.extend("  " + line for line in json.dumps(req["payload"], indent=2, ensure_ascii=False).splitlines())
        out.append("")
    traces = data.get("traces") or {}
    if traces:
        out.append("Where each amount comes from:")
        for path, origin in traces.items():
            out.append(f"  {path}: {origin}")
    return "\n".join(out).rstrip() + "\n"
