"""A second SOAP client, independent of zeep: XML written by hand, answers
read with lxml, so that the emulator is checked against the WSDL's words
and not against the production client's habits."""

from xml.sax.saxutils import escape

import pytest
import requests
from lxml import etree  # type: ignore[import-untyped]

NS = "urn:send-emulator:clab"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
API_KEY = "test-api-key-1"
USER_KEY = "test-user-key-1"


def q(name):
    return f"{{{NS}}}{name}"


def element(name, value=None, **children):
    """Build `<tns:name>` text: a value, or children given as XML strings."""
    if value is not None:
        return f"<tns:{name}>{escape(str(value))}</tns:{name}>"
    return f"<tns:{name}>{''.join(children.values())}</tns:{name}>"


def attribute(key, value):
    nil = '<tns:value xsi:nil="true"/>'
    inner = nil if value is None else element("value", value)
    return f"<tns:attributes>{element('key', key)}{inner}</tns:attributes>"


def subscriber(attributes, identifier=None):
    head = "" if identifier is None else element("identifier", identifier)
    items = "".join(attribute(key, value) for key, value in attributes.items())
    return head + items


class Answer:
    def __init__(self, response):
        self.status = response.status_code
        self.root = etree.fromstring(response.content)
        body = self.root.find(f"{{{SOAP_ENV}}}Body")
        self.element = body[0]

    @property
    def fault_code(self):
        return self.element.findtext(f".//{q('code')}")

    @property
    def fault_field(self):
        return self.element.findtext(f".//{q('field')}")

    @property
    def fault_string(self):
        return self.element.findtext("faultstring")

    @property
    def soap_fault_code(self):
        return self.element.findtext("faultcode")

    def value(self, path="tns:return"):
        return self.element.findtext(path, namespaces={"tns": NS})

    def find(self, path):
        return self.element.find(path, namespaces={"tns": NS})

    def findall(self, path):
        return self.element.findall(path, namespaces={"tns": NS})


class RawSoap:
    def __init__(self, url):
        self.url = url
        self.http = requests.Session()
        self.token = None

    def post(self, body, timeout=10):
        envelope = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:tns="{NS}"'
            f' xmlns:xsi="{XSI}"><soap:Body>{body}</soap:Body></soap:Envelope>'
        )
        return self.http.post(
            self.url,
            data=envelope.encode(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            timeout=timeout,
        )

    def call(self, operation, *parts, token=True):
        if token:
            parts = (element("token", content=element("content", self.token)), *parts)
        return Answer(self.post(f"<tns:{operation}>{''.join(parts)}</tns:{operation}>"))

    def login(self, api_key=API_KEY, user_key=USER_KEY):
        answer = self.call(
            "borrowToken",
            element("apiKey", api_key),
            element("userKey", user_key),
            token=False,
        )
        self.token = answer.value("tns:return/tns:content")
        return answer


def records(answer, path="tns:return/tns:currentPageItems"):
    """Return the subscribers of an answer as (identifier, attributes)."""
    found = []
    for item in answer.findall(path):
        attributes = {}
        for entry in item.findall(q("attributes")):
            value = entry.find(q("value"))
            nil = value is None or value.get(f"{{{XSI}}}nil") == "true"
            attributes[entry.findtext(q("key"))] = None if nil else value.text or ""
        found.append((int(item.findtext(q("identifier"))), attributes))
    return found


@pytest.fixture
def raw(send):
    send.create_account(API_KEY, USER_KEY)
    client = RawSoap(send.soap_url)
    client.login()
    return client


@pytest.fixture
def userdb(send, raw):
    return send.create_userdb(
        API_KEY,
        name="Raw",
        fields=[
            ("email", "STRING", True),
            ("age", "INTEGER"),
            ("joined", "TIMESTAMP"),
            ("vip", "FLAG"),
            ("at", "TIME"),
        ],
        subscriptions=[
            {"name": "News", "registrationField": "news", "webformCode": "WF-RAW"}
        ],
    )
