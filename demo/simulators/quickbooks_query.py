"""Helpers of the QuickBooks Online simulator: the query language, faults and money handling and the
per-company store (the validation rules of each entity are in ``quickbooks_rules``).

The query language as the simulator understands it:

``SELECT * | COUNT(*) | f1, f2 FROM Entity [WHERE cond AND cond ...] [ORDERBY f [ASC|DESC], ...]
[STARTPOSITION n] [MAXRESULTS m]`` where a condition is ``f op value`` (``= < > <= >= !=``),
``f IN (v, ...)`` or ``f LIKE '%x%'``. Keywords are case-insensitive, strings are single-quoted with
``\\'`` escapes, and there is no ``OR`` (a parse fault, as on the real API).
"""

from __future__ import annotations

import json
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),*])
""", re.VERBOSE)

# Fields whose value is an object: which member a condition compares against.
_OBJECT_MEMBERS = ("value", "Address", "FreeFormNumber", "URI")


class QueryError(Exception):
    """A query the API would refuse: ``parse`` errors are code 4000, validation errors 4001."""

    def __init__(self, detail: str, *, parse: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = "4000" if parse else "4001"
        self.message = "Error parsing query" if parse else "Invalid query"


@dataclass
class Condition:
    field: str
    op: str               # =, <, >, <=, >=, !=, IN, LIKE
    value: Any            # a literal, or a list of literals for IN


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None      # None = all fields
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise QueryError(f'QueryParserError: Encountered " "{text[pos]}" at line 1, column {pos + 1}.')
        if m.lastgroup != "ws":
            tokens.append(_Tok(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return tokens


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, tok: _Tok | None = None, expecting: str = "") -> QueryError:
        tok = tok or self.peek()
        where = f'"{tok.text}" at line 1, column {tok.pos + 1}' if tok else "<EOF>"
        kind = f" <{tok.upper}>" if tok and tok.upper in ("OR", "NOT") else ""
        detail = f"QueryParserError: Encountered{kind} {where}."
        if expecting:
            detail += f"\nWas expecting: {expecting}"
        return QueryError(detail)

    def next(self, expecting: str = "") -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.fail(None, expecting)
        self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and tok.upper in words:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.fail(expecting=word)

    def expect_punct(self, ch: str) -> None:
        tok = self.next(ch)
        if tok.text != ch:
            raise self.fail(tok, ch)

    def ident(self) -> str:
        tok = self.next("<IDENTIFIER>")
        if tok.kind != "ident" or tok.upper in _RESERVED:
            raise self.fail(tok, "<IDENTIFIER>")
        return tok.text

    def integer(self) -> int:
        tok = self.next("<INTEGER>")
        if tok.kind != "number" or not tok.text.lstrip("-").isdigit():
            raise self.fail(tok, "<INTEGER>")
        return int(tok.text)

    def literal(self) -> Any:
        tok = self.next("<STRING>")
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            return Decimal(tok.text)
        if tok.kind == "ident" and tok.upper in ("TRUE", "FALSE"):
            return tok.upper == "TRUE"
        raise self.fail(tok, "<STRING>")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count, fields = False, None
        tok = self.peek()
        if tok is not None and tok.upper == "COUNT":
            self.i += 1
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        elif tok is not None and tok.text == "*":
            self.i += 1
            while self.peek() is not None and self.peek().text == ",":  # "SELECT *, Sku"
                self.i += 1
                self.ident()
        else:
            fields = [self.ident()]
            while self.peek() is not None and self.peek().text == ",":
                self.i += 1
                fields.append(self.ident())
        self.expect_keyword("FROM")
        query = Query(entity=self.ident(), count=count, fields=fields)
        if self.keyword("WHERE"):
            query.where.append(self.condition())
            while self.keyword("AND"):
                query.where.append(self.condition())
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self._by()):
            query.order.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":
                self.i += 1
                query.order.append(self.order_item())
        seen: set[str] = set()
        while self.peek() is not None:
            tok = self.next()
            if tok.upper in ("STARTPOSITION", "MAXRESULTS") and tok.upper not in seen:
                seen.add(tok.upper)
                value = self.integer()
                if tok.upper == "STARTPOSITION":
                    if value < 1:
                        raise QueryError("QueryValidationError: STARTPOSITION must be 1 or more",
                                         parse=False)
                    query.start = value
                else:
                    if value > MAX_RESULTS:
                        raise QueryError(f"QueryValidationError: value {value} is too large. "
                                         f"Max allowed value is {MAX_RESULTS}", parse=False)
                    if value < 1:
                        raise QueryError("QueryValidationError: MAXRESULTS must be 1 or more",
                                         parse=False)
                    query.max_results = value
            else:
                raise self.fail(tok, "<EOF>")
        return query

    def _by(self) -> bool:
        self.expect_keyword("BY")
        return True

    def order_item(self) -> tuple[str, bool]:
        name = self.ident()
        desc = False
        if self.keyword("DESC"):
            desc = True
        else:
            self.keyword("ASC")
        return name, desc

    def condition(self) -> Condition:
        name = self.ident()
        tok = self.next("<OPERATOR>")
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Condition(name, op, self.literal())
        if tok.upper == "IN":
            self.expect_punct("(")
            values = [self.literal()]
            while True:
                sep = self.next(")")
                if sep.text == ")":
                    break
                if sep.text != ",":
                    raise self.fail(sep, ")")
                values.append(self.literal())
            return Condition(name, "IN", values)
        if tok.upper == "LIKE":
            value = self.literal()
            if not isinstance(value, str):
                raise self.fail(self.toks[self.i - 1], "<STRING>")
            return Condition(name, "LIKE", value)
        raise self.fail(tok, "<OPERATOR>")


_RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDERBY", "ORDER", "BY",
             "STARTPOSITION", "MAXRESULTS", "ASC", "DESC", "COUNT"}


def parse_query(text: str) -> Query:
    """Parse one statement; raises ``QueryError`` the way the API faults."""
    text = text.strip().rstrip(";")
    if not text:
        raise QueryError("QueryParserError: Encountered <EOF>.")
    return _Parser(text).parse()


# -- evaluation ---------------------------------------------------------------------------------
def parse_datetime(text: str, tz: tzinfo) -> datetime | None:
    """An ISO date or date-time; naive values are taken in ``tz`` (the company's zone)."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            dt = datetime(d.year, d.month, d.day)
        else:
            dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)


def field_value(obj: dict, path: str) -> Any:
    """``obj``'s value at a dotted path, matching names case-insensitively; a reference or an
    address object yields its ``value`` / ``Address`` member."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        if part in cur:
            cur = cur[part]
        else:
            key = next((k for k in cur if k.lower() == part.lower()), None)
            if key is None:
                return None
            cur = cur[key]
    if isinstance(cur, dict):
        for member in _OBJECT_MEMBERS:
            if member in cur:
                return cur[member]
        return None
    return cur


def _sort_key(value: Any, tz: tzinfo) -> tuple:
    if value is None:
        return (3, "")
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float | Decimal):
        return (0, Decimal(value))
    text = str(value)
    if text.isdigit():
        return (0, Decimal(text))
    dt = parse_datetime(text, tz) if len(text) >= 10 and text[:4].isdigit() else None
    if dt is not None:
        return (1, dt.timestamp())
    return (2, text.lower())


def _compare(actual: Any, op: str, literal: Any, tz: tzinfo) -> bool:
    if actual is None:
        return False
    if isinstance(actual, bool) or isinstance(literal, bool):
        a, b = str(actual).lower(), str(literal).lower()
        return {"=": a == b, "!=": a != b}.get(op, False)
    a_key, b_key = _sort_key(actual, tz), _sort_key(literal, tz)
    if isinstance(literal, str) and a_key[0] == 0:  # numeric field, quoted literal
        try:
            b_key = (0, Decimal(literal))
        except InvalidOperation:
            return False
    if a_key[0] != b_key[0]:
        if a_key[0] == 2 or b_key[0] == 2:
            a_key, b_key = (2, str(actual).lower()), (2, str(literal).lower())
        else:
            return False
    a, b = a_key[1], b_key[1]
    return {"=": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def _like(actual: Any, pattern: str) -> bool:
    if actual is None:
        return False
    regex = "".join(".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, str(actual), flags=re.IGNORECASE | re.DOTALL) is not None


def matches(obj: dict, cond: Condition, tz: tzinfo) -> bool:
    actual = field_value(obj, cond.field)
    if cond.op == "IN":
        return any(_compare(actual, "=", v, tz) for v in cond.value)
    if cond.op == "LIKE":
        return _like(actual, cond.value)
    return _compare(actual, cond.op, cond.value, tz)


def run_query(query: Query, objects: list[dict], tz: tzinfo, *, active_only: bool = False) -> dict:
    """The ``QueryResponse`` for ``query`` over ``objects`` (already the right entity).

    ``active_only``: list entities (Customer, Item, Account) return only active objects unless the
    query filters on ``Active`` itself, as on the real API.
    """
    rows = objects
    if active_only and not any(c.field.lower() == "active" for c in query.where):
        rows = [o for o in rows if o.get("Active", True)]
    rows = [o for o in rows if all(matches(o, c, tz) for c in query.where)]
    if query.count:
        return {"totalCount": len(rows)}
    order = query.order or [("Id", False)]
    for name, desc in reversed(order):
        rows = sorted(rows, key=lambda o, n=name: _sort_key(field_value(o, n), tz), reverse=desc)
    page = rows[query.start - 1:query.start - 1 + query.max_results]
    if not page:
        return {}
    if query.fields is not None:
        wanted = {f.lower() for f in query.fields} | {"id", "synctoken", "domain"}
        page = [{k: v for k, v in o.items() if k.lower() in wanted} | {"sparse": True} for o in page]
    return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}


# -- shared helpers: faults, numbers, JSON -------------------------------------------------------
try:
    from zoneinfo import ZoneInfo

    COMPANY_TZ: tzinfo = ZoneInfo("America/Los_Angeles")
except Exception:  # pragma: no cover - no tz database
    COMPANY_TZ = UTC

CENT = Decimal("0.01")
ENTITIES = {name.lower(): name for name in (
    "Customer", "Item", "Account", "Invoice", "Payment", "SalesReceipt", "CreditMemo", "RefundReceipt",
    "TaxCode", "TaxRate", "Deposit", "Transfer", "Term")}
SALES_FORMS = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt")
DELETABLE = set(SALES_FORMS) | {"Payment", "Deposit", "Transfer"}
TRANSACTIONS = (*SALES_FORMS, "Payment")
LIST_ENTITIES = ("Customer", "Item", "Account", "TaxCode", "TaxRate", "Term")
READ_ONLY = ("TaxCode", "TaxRate")       # created through TaxService, never by a write to themselves
ACCOUNT_CLASSIFICATION = {
    "Bank": "Asset", "Other Current Asset": "Asset", "Fixed Asset": "Asset", "Other Asset": "Asset",
    "Accounts Receivable": "Asset", "Equity": "Equity", "Expense": "Expense",
    "Other Expense": "Expense", "Cost of Goods Sold": "Expense", "Accounts Payable": "Liability",
    "Credit Card": "Liability", "Long Term Liability": "Liability",
    "Other Current Liability": "Liability", "Income": "Revenue", "Other Income": "Revenue"}
SEED_ACCOUNTS = (("Sales of Product Income", "Income", "SalesOfProductIncome"),
                 ("Services", "Income", "ServiceFeeIncome"),
                 ("Shipping Income", "Income", "OtherPrimaryIncome"),
                 ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
                 ("Checking", "Bank", "Checking"),
                 ("Discounts given", "Income", "DiscountsRefundsGiven"))
COUNTRY = {"USD": "US", "CAD": "CA", "GBP": "GB", "AUD": "AU", "EUR": "FR", "INR": "IN"}
HOME_CURRENCY = {"US": "USD", "CA": "CAD", "GB": "GBP", "AU": "AUD", "FR": "EUR", "IN": "INR"}


class QBFault(Exception):
    """A fault the API answers with (HTTP ``status``, default 400 ValidationFault)."""

    def __init__(self, code: str | int, message: str, detail: str = "", *, status: int = 400,
                 type_: str = "ValidationFault", element: str | None = None) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail = str(code), message, detail
        self.status, self.type, self.element = status, type_, element

    def body(self) -> dict:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Fault": {"Error": [error], "type": self.type}}


def required(name: str) -> QBFault:
    return QBFault(2020, "Required param missing, need to supply the required value for the API",
                   f"Required parameter {name} is missing in the request", element=name)


def invalid_ref(what: str, value: Any) -> QBFault:
    return QBFault(2500, "Invalid Reference Id",
                   f"Invalid Reference Id : {what} assigned is invalid or inactive (Id={value}). "
                   "Something you're trying to use has been made inactive. Check the fields with "
                   "accounts, customers, items, vendors or employees.")


def business(detail: str) -> QBFault:
    return QBFault(6000, "A business validation error has occurred while processing your request",
                   f"Business Validation Error: {detail}")


def not_found(entity: str, id_: Any) -> QBFault:
    return QBFault(610, "Object Not Found",
                   f"Object Not Found : Something you're trying to use has been made inactive. "
                   f"Check the fields with accounts, customers, items, vendors or employees. "
                   f"({entity} Id={id_})")


def now_text() -> str:
    return datetime.now(COMPANY_TZ).replace(microsecond=0).isoformat()


def money(value: Any, name: str = "Amount") -> Decimal:
    """A JSON number (int, Decimal) or numeric string as a Decimal rounded to the cent."""
    return as_number(value, name).quantize(CENT, rounding=ROUND_HALF_UP)


def as_number(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise QBFault(2010, "Request has invalid or unsupported property",
                      f"Property Name:{name} specified is unsupported or invalid (not a number)")
    try:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise QBFault(2010, "Request has invalid or unsupported property",
                      f"Property Name:{name} specified is unsupported or invalid (not a number)") from None


def clean(value: Any) -> Any:
    """Drop empty-string fields the SDK sends for unset attributes (``"DueDate": ""``)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v != "" and v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def ref_value(ref: Any) -> str | None:
    if isinstance(ref, dict):
        value = ref.get("value")
        return None if value in (None, "") else str(value)
    return None


_MARK = "\u0000D" + secrets.token_hex(4)
_MARK_RE = re.compile(re.escape(json.dumps(_MARK)[1:-1]) + r"([-+0-9.Ee]+)" + re.escape("\\u0000"))


def dumps(payload: Any) -> str:
    """JSON with Decimals written as numbers, exactly as held (``10.50`` stays ``10.50``)."""
    def default(o: Any) -> Any:
        if isinstance(o, Decimal):
            return f"{_MARK}{o}\u0000"
        raise TypeError(type(o).__name__)
    text = json.dumps(payload, default=default)
    return re.sub('"' + _MARK_RE.pattern + '"', r"\1", text)


@dataclass
class Company:
    """One QuickBooks company: its settings, its objects per entity and its throttling counters.

    ``country`` decides the tax model: ``US`` keeps sales tax as a total (``TAX``/``NON`` line codes,
    Automated Sales Tax); any other country uses the global model (a ``TaxCodeRef`` on every line)."""

    realm_id: str
    automated_sales_tax: bool = True
    currency: str = "USD"
    multicurrency: bool = False
    country: str = "US"
    allow_shipping: bool = True   # SalesFormsPrefs.AllowShipping
    exchange_rates: dict[str, Decimal] = field(default_factory=dict)   # home units per foreign unit
    dated_rates: dict[tuple[str, str], Decimal] = field(default_factory=dict)   # (currency, YYYY-MM-DD) → rate

    def rate_on(self, currency: str, day: str) -> Decimal | None:
        """The rate QuickBooks uses for ``currency`` on ``day``: that day's, else the latest before it,
        else the company's standing rate (None: no rate at all)."""
        before = [d for (c, d) in self.dated_rates if c == currency and d <= day]
        if before:
            return self.dated_rates[(currency, max(before))]
        return self.exchange_rates.get(currency)
    next_id: int = 1
    objects: dict[str, dict[str, dict]] = field(default_factory=lambda: {e: {} for e in ENTITIES.values()})
    deleted: dict[str, dict[str, dict]] = field(default_factory=lambda: {e: {} for e in ENTITIES.values()})
    request_ids: dict[str, tuple[int, str]] = field(default_factory=dict)
    doc_numbers: dict[str, int] = field(default_factory=dict)
    recent: deque = field(default_factory=deque)        # monotonic times of requests (1 min)
    recent_batches: deque = field(default_factory=deque)
    in_flight: int = 0
    created: str = field(default_factory=now_text)

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id - 1)
