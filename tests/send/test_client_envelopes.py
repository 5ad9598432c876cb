import re

import pytest
import zeep
from lxml import etree

from send_emulator import wsdl
from sources.send import client
from sources.send.gateway import InvalidData

ADDRESS = "http://send.example.com/soap/services"
RECORDS = [
    {"email": "ada@example.com", "firstName": "Ada", "notes": None},
    {"email": "zoë@example.com", "firstName": "Łukasz 李", "city": "Zürich €"},
    {"notes": "a < b & c > d, \"quoted\" 'too'", "firstName": "  spaced  "},
    {"email": "", "age": None},
    {},
]


def parameters(records):
    """Return `addSubscribers` parameters as the text envelope takes them."""
    return {
        "token": {"content": "token-1"},
        "sourceIdentifier": 42,
        "subscribers": records,
    }


def zeep_parameters(records):
    """Return the same parameters shaped as zeep takes them."""
    return {
        **parameters(records),
        "subscribers": [{"attributes": client._attributes(r)} for r in records],
    }


def load(tmp_path, text):
    path = tmp_path / "service.wsdl"
    path.write_text(text)
    return zeep.Client(str(path))


def canonical(envelope):
    text = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return etree.tostring(etree.fromstring(text), method="c14n")


def emulator_wsdl():
    return wsdl.render(ADDRESS).decode()


def other_namespace():
    text = emulator_wsdl().replace(wsdl.NAMESPACE, "urn:example:other:v2")
    return text.replace('soapAction=""', 'soapAction="urn:example:action"')


def values_required():
    # A value that may not be left out is sent as xsi:nil when null.
    return re.sub(
        r'(name="value" type="xsd:string") minOccurs="0"', r"\1", emulator_wsdl()
    )


@pytest.mark.parametrize("text", [emulator_wsdl, other_namespace, values_required])
def test_a_batch_envelope_is_the_one_zeep_builds(tmp_path, text):
    zeep_client = load(tmp_path, text())
    params = parameters(RECORDS)
    batch = client._batch_envelope(zeep_client)

    built = zeep_client.create_message(
        zeep_client.service, "addSubscribers", **zeep_parameters(RECORDS)
    )

    assert batch is not None
    assert canonical(batch.render(params)) == canonical(built)


def test_a_null_value_is_left_out_or_nil_as_the_wsdl_says(tmp_path):
    params = parameters([{"notes": None}])
    optional = client._batch_envelope(load(tmp_path, emulator_wsdl()))
    required = client._batch_envelope(load(tmp_path, values_required()))

    assert optional.render(params).find(".//{*}value") is None
    nil = required.render(params).find(".//{*}value")
    assert nil.get(client._XSI_NIL) == "true"
    assert nil.text is None


def test_the_names_and_action_come_from_the_wsdl(tmp_path):
    batch = client._batch_envelope(load(tmp_path, other_namespace()))

    assert batch.address == ADDRESS
    assert batch.request == "{urn:example:other:v2}addSubscribers"
    assert batch.value == "{urn:example:other:v2}value"
    assert batch.headers == {
        "SOAPAction": '"urn:example:action"',
        "Content-Type": "text/xml; charset=utf-8",
    }


@pytest.mark.parametrize(
    "old, new",
    [
        # A required element the builder does not fill.
        (
            '<xsd:element name="attributes" type="tns:SubscriberAttribute"\n',
            '<xsd:element name="origin" type="xsd:string"/>'
            '<xsd:element name="attributes" type="tns:SubscriberAttribute"\n',
        ),
        # A value that is neither optional nor nillable.
        ('minOccurs="0"\n                   nillable="true"/>', "/>"),
        # A typed value, which zeep may render with xsi:type.
        ('name="value" type="xsd:string"', 'name="value" type="xsd:anyType"'),
    ],
)
def test_an_unfamiliar_request_shape_is_left_to_zeep(tmp_path, old, new):
    text = emulator_wsdl()
    assert old in text

    zeep_client = load(tmp_path, text.replace(old, new, 1))

    assert client._batch_envelope(zeep_client) is None


def test_a_batch_sent_as_written_text_keeps_text_and_nulls(
    gateway, userdb, monkeypatch
):
    written = []
    serialize = client._BatchEnvelope.serialize

    def spy(self, params):
        written.append(params)
        return serialize(self, params)

    monkeypatch.setattr(client._BatchEnvelope, "serialize", spy)
    records = [
        {"email": "zoë@example.com", "firstName": "Łukasz 李", "notes": None},
        {"email": "ada@example.com", "notes": "a < b & c\r\nd > e"},
    ]

    added = gateway.add_subscribers(userdb["id"], records)
    found = gateway.get_subscriber(userdb["id"], added[0].identifier)

    assert len(written) == 1
    assert [s.attributes["notes"] for s in added] == [None, "a < b & c\r\nd > e"]
    assert found.attributes["firstName"] == "Łukasz 李"
    assert found.attributes["notes"] is None


def test_a_value_xml_cannot_carry_is_refused_before_sending(tmp_path):
    batch = client._batch_envelope(load(tmp_path, emulator_wsdl()))

    with pytest.raises(InvalidData):
        batch.serialize(parameters([{"notes": "bell \x07"}]))


def test_a_batch_goes_through_zeep_when_the_wsdl_needs_it(gateway, userdb, monkeypatch):
    monkeypatch.setattr(client, "_batch_envelope", lambda zeep_client: None)
    client.reset_caches()
    records = [{"email": "zoë@example.com", "notes": None}, {"email": "ada@x.org"}]

    added = gateway.add_subscribers(userdb["id"], records)

    assert [s.attributes["email"] for s in added] == ["zoë@example.com", "ada@x.org"]
    assert added[0].attributes["notes"] is None
    client.reset_caches()
