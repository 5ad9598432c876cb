"""How the client reads the answers it parses itself (batch adds, pages)."""

import pytest
import urllib3

from sources.send import client
from sources.send.gateway import RateLimited, TransientError

ENVELOPE = (
    "<?xml version='1.0' encoding='utf-8'?>{doctype}"
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xmlns:t="urn:example:send"><soap:Body><t:addSubscribersResponse>'
    "<t:return><t:identifier>7</t:identifier>"
    "<t:attributes><t:key>email</t:key><t:value>{email}</t:value></t:attributes>"
    '<t:attributes><t:key>notes</t:key><t:value xsi:nil="true"/></t:attributes>'
    "<t:attributes><t:key>city</t:key><t:value/></t:attributes>"
    "<t:attributes><t:key>age</t:key></t:attributes>"
    "</t:return></t:addSubscribersResponse></soap:Body></soap:Envelope>"
)


def answer(email="a&amp;b@example.com", doctype=""):
    return ENVELOPE.format(email=email, doctype=doctype).encode()


@pytest.mark.parametrize(
    "content",
    [answer(), b"\xef\xbb\xbf" + answer(), b"\n  " + answer()[38:]],
    ids=["UTF-8", "with a byte order mark", "no declaration, blank first"],
)
def test_records_are_read_with_their_nulls_and_empty_texts(content):
    body = client._body_of(200, content)

    (record,) = client._subscribers_in(body, "{*}return")

    assert record.identifier == 7
    assert record.attributes == {
        "email": "a&b@example.com",
        "notes": None,
        "city": "",
        "age": None,
    }


@pytest.mark.parametrize(
    "content",
    [
        b"<oops",
        answer(doctype='<!DOCTYPE x [<!ENTITY big "0123456789">]>'),
        answer().decode().replace("utf-8", "utf-16").encode("utf-16"),
    ],
    ids=["not XML", "a document type declaration", "UTF-16"],
)
def test_an_unreadable_answer_is_a_transient_error(
    gateway, userdb, monkeypatch, content
):
    monkeypatch.setattr(client, "_post_raw", lambda *_: (200, content))

    with pytest.raises(TransientError, match="malformed XML"):
        gateway.add_subscribers(userdb["id"], [{"email": "ada@example.com"}])


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (502, b"", TransientError),
        (503, b"Service Unavailable", TransientError),
        (429, b"<html><body>Slow down</body></html>", RateLimited),
        (429, b"<html><p>Slow down</html>", RateLimited),
        (429, b"<!DOCTYPE html><html><body>Slow down</body></html>", RateLimited),
    ],
    ids=["empty", "text", "an HTML page", "broken HTML", "a declared HTML page"],
)
def test_an_error_status_without_a_soap_answer_is_that_error(
    gateway, userdb, monkeypatch, status, content, error
):
    monkeypatch.setattr(client, "_post_raw", lambda *_: (status, content))

    with pytest.raises(error, match=f"HTTP {status}|rate limit"):
        gateway.add_subscribers(userdb["id"], [{"email": "ada@example.com"}])


class StalledBody:
    """An answer whose headers came and whose body then failed."""

    status_code = 200

    def __init__(self, error):
        self.raw = self
        self.error = error

    def read(self, decode_content):
        raise self.error

    def close(self):
        pass


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            urllib3.exceptions.ReadTimeoutError(None, "/soap", "read timed out"),
            "within",
        ),
        (urllib3.exceptions.ProtocolError("connection broken"), "connection"),
    ],
    ids=["a stall", "a broken connection"],
)
def test_a_body_that_fails_midway_is_a_transient_error(
    gateway, userdb, monkeypatch, error, message
):
    gateway.count_subscribers(userdb["id"])
    service = client._service(gateway._wsdl_url, gateway._timeout)
    monkeypatch.setattr(
        service.client.transport.session, "post", lambda *_, **__: StalledBody(error)
    )

    with pytest.raises(TransientError, match=message):
        gateway.add_subscribers(userdb["id"], [{"email": "ada@example.com"}])
