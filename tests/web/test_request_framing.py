"""Where a request ends, as ``o2c serve``'s worker finds it before a thread takes the request: complete only
when head and body are all there, however the bytes are split, and refused when too large or unframeable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from web.gunicorn_worker import refusal_response
from web.request_framing import MAX_BODY, Refusal, RequestFraming

HEAD = b"POST /webhooks/shopify HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"


def chunked(body: bytes, size: int, *, trailers: bytes = b"") -> bytes:
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n" + trailers + b"\r\n"


def fed(data: bytes, cuts: list[int], max_body: int = MAX_BODY) -> list[bool | Refusal | None]:
    """The verdict after each piece of ``data`` split at ``cuts``."""
    framing = RequestFraming(max_body)
    points = sorted({c % (len(data) + 1) for c in cuts} | {len(data)})
    verdicts, start = [], 0
    for point in points:
        verdicts.append(framing.feed(data[start:point]))
        start = point
    return verdicts


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=3000), size=st.integers(1, 700), cuts=st.lists(st.integers(0, 10_000), max_size=12),
       use_chunks=st.booleans(), trailers=st.sampled_from([b"", b"X-Check: 1\r\n"]))
def test_complete_only_once_everything_is_there(body: bytes, size: int, cuts: list[int], use_chunks: bool,
                                                trailers: bytes) -> None:
    if use_chunks:
        data = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body, size, trailers=trailers)
    else:
        data = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    verdicts = fed(data, cuts)
    assert verdicts[-1] is True
    assert all(v is None for v in verdicts[:-1])               # never complete (nor refused) before the last byte
    assert fed(data[:-1], cuts)[-1] is None                      # one byte short is never complete


def test_no_body_and_pipelined_requests() -> None:
    assert RequestFraming(MAX_BODY).feed(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\nGET /next") is True
    assert RequestFraming(MAX_BODY).feed(b"\r\nGET / HTTP/1.1\r\n\r\n") is True
    assert RequestFraming(MAX_BODY).feed(HEAD + b"Content-Length: 0\r\n\r\n") is True
    framing = RequestFraming(MAX_BODY)
    assert framing.feed(HEAD + b"Content-Length: 4\r\n\r\nab") is None and framing.head_done
    assert framing.feed(b"cdPOST / HTTP/1.1\r\n") is True


def test_bodies_over_the_bound_are_refused_as_soon_as_it_is_known() -> None:
    assert RequestFraming(100).feed(HEAD + b"Content-Length: 101\r\n\r\n") == Refusal(413, "body larger than 100 bytes")
    framing = RequestFraming(100)
    assert framing.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"x" * 64 + b"\r\n") is None
    assert framing.feed(b"25\r\n") == Refusal(413, "body larger than 100 bytes")   # 64 + 37 > 100: before its data
    assert RequestFraming(100).feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n").status == 413
    # chunks padded with long extensions: the raw bytes are bounded too, not only the decoded body
    framing = RequestFraming(1000)
    verdicts = [framing.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")]
    verdicts += [framing.feed(b"1;pad=" + b"p" * 8000 + b"\r\nx\r\n") for _ in range(60)]
    assert verdicts[:30] == [None] * 30 and Refusal(413, "body larger than 1000 bytes") in verdicts


def test_what_cannot_be_framed_is_refused_not_waited_for() -> None:
    for head in (b"Content-Length: \xd9\xa1\xd9\xa2\r\n", b"Content-Length: \xc2\xb2\r\n", b"Content-Length: -1\r\n",
                 b"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length: 99999999999999999999999\r\n",
                 b"Transfer-Encoding: gzip\r\n", b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"):
        verdict = RequestFraming(MAX_BODY).feed(HEAD + head + b"\r\n")
        assert isinstance(verdict, Refusal) and verdict.status == 400, head
    bad = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    assert RequestFraming(MAX_BODY).feed(bad + b"zz\r\n").status == 400
    assert RequestFraming(MAX_BODY).feed(bad + b"2\r\nabXY").status == 400
    assert RequestFraming(MAX_BODY).feed(bad + b"1" * 9000).status == 400
    assert RequestFraming(MAX_BODY).feed(b"GET / HTTP/1.1\r\nX: " + b"y" * 70_000).status == 431


def test_expect_continue_is_noticed() -> None:
    framing = RequestFraming(MAX_BODY)
    assert framing.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\n") is None
    assert framing.expects_continue and framing.feed(b"abc") is True


def test_refusal_answer_is_json_and_closes() -> None:
    answer = refusal_response(Refusal(408, "too slow"))
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and b"Connection: close\r\n" in answer
    assert answer.endswith(b'\r\n\r\n{"error": "too slow"}')
