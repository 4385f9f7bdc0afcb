"""GraphQL documents the Shopify simulator has parsed and validated, remembered by their query text.

The hub sends the same few query texts over and over; parsing and validating each against the 600 KB Admin
schema was most of the simulator's CPU. ``Documents.check`` parses and validates a text once and answers
the same thing every later time: the document, or the errors Shopify would answer for it (a syntax error,
or every validation error). The rules are the same as before (graphql-core's ``parse`` and ``validate``
with the standard rules): a text that was refused is refused again, word for word. Documents are never
changed once parsed (execution and pricing only read them), so threads share them safely.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import graphql
from graphql.language import DocumentNode

MAX_DOCUMENTS = 512   # distinct query texts remembered (the least recently used is forgotten)


class Documents:
    """Parsed and validated documents of one schema, by query text."""

    def __init__(self, schema: graphql.GraphQLSchema, size: int = MAX_DOCUMENTS) -> None:
        self.schema = schema
        self.size = size
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[DocumentNode | None, tuple[dict[str, Any], ...]]] = OrderedDict()

    def check(self, query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
        """(the document, []) for a valid text; (None, the formatted errors) for one Shopify refuses."""
        with self._lock:
            known = self._known.get(query)
            if known is not None:
                self._known.move_to_end(query)
        if known is None:
            known = self._parse_and_validate(query)
            with self._lock:
                self._known[query] = known
                while len(self._known) > self.size:
                    self._known.popitem(last=False)
        doc, errors = known
        return doc, [dict(e) for e in errors]

    def _parse_and_validate(self, query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
        try:
            doc = graphql.parse(query)
        except graphql.GraphQLError as exc:
            return None, (exc.formatted,)
        errors = graphql.validate(self.schema, doc)
        if errors:
            return None, tuple(e.formatted for e in errors)
        return doc, ()
