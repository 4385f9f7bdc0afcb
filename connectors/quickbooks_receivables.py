"""QuickBooks calls of the receivables work: payment terms, the aged-receivables reports, open invoices
and invoice send (``POST /invoice/{id}/send``: QuickBooks e-mails the invoice again, a reminder).

Mixed into ``connectors.quickbooks.QuickBooksClient``; API only, no business rule."""

from __future__ import annotations

from typing import Any

from connectors import jsonmoney

OPEN_INVOICES_PAGE = 1000


class ReceivablesCalls:
    """Needs ``self._qb`` (python-quickbooks), ``self.realm_id``, ``self._call`` and ``self.query``."""

    _qb: Any
    realm_id: str

    def report(self, name: str, **params: str) -> dict[str, Any]:
        """A report (``GET /reports/<name>?…``), e.g. ``report("AgedReceivables", report_date="2026-12-31")``."""
        url = f"{self._qb.api_url}/company/{self.realm_id}/reports/{name}"
        return self._call(self._qb.get, url, params=dict(params))  # type: ignore[attr-defined]

    def open_invoices(self) -> list[dict[str, Any]]:
        """Every invoice with an open balance (pages of 1,000)."""
        out: list[dict[str, Any]] = []
        start = 1
        while True:
            rows = self.query(f"SELECT * FROM Invoice WHERE Balance > '0' STARTPOSITION {start} "  # type: ignore[attr-defined]
                              f"MAXRESULTS {OPEN_INVOICES_PAGE}")
            out.extend(rows)
            if len(rows) < OPEN_INVOICES_PAGE:
                return out
            start += OPEN_INVOICES_PAGE

    def send_invoice(self, invoice_id: str, *, send_to: str | None = None,
                     request_id: str | None = None) -> dict[str, Any]:
        """Have QuickBooks e-mail the invoice (to ``send_to``, else its ``BillEmail``)."""
        url = f"{self._qb.api_url}/company/{self.realm_id}/invoice/{invoice_id}/send"
        params = {"sendTo": send_to} if send_to else {}
        result = self._call(self._qb.post, url, jsonmoney.dumps({}), params=params,  # type: ignore[attr-defined]
                            request_id=request_id)
        return result.get("Invoice") or {}
