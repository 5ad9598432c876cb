import requests
from lxml import etree  # type: ignore[import-untyped]

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP_BINDING = "http://schemas.xmlsoap.org/wsdl/soap/"
OPERATIONS = {
    "borrowToken",
    "keepaliveToken",
    "invalidateToken",
    "getSubscriberSource",
    "findSubscriberSources",
    "isSubscriberSourceLocked",
    "countSubscribers",
    "getSubscriber",
    "findSubscribers",
    "findSubscribersBy",
    "addSubscriber",
    "addSubscribers",
    "updateSubscriber",
    "removeSubscriber",
    "findSubscriptionsBy",
    "modifySubscriberSubscriptionStatus",
}
NS = {"wsdl": WSDL, "soap": SOAP_BINDING}


def wsdl_of(url, **headers):
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    return etree.fromstring(response.content)


def test_it_serves_one_clab_service_port(send):
    wsdl = wsdl_of(send.wsdl_url)

    ports = wsdl.findall("wsdl:service/wsdl:port", NS)
    assert wsdl.find("wsdl:service", NS).get("name") == "ClabService"
    assert len(ports) == 1
    assert ports[0].get("name") == "ClabService"


def test_the_address_points_back_where_it_was_asked(send):
    port = send.base_url.rsplit(":", 1)[1]

    direct = wsdl_of(send.wsdl_url)
    renamed = wsdl_of(send.wsdl_url, Host=f"localhost:{port}")

    path = "wsdl:service/wsdl:port/soap:address"
    assert direct.find(path, NS).get("location") == send.soap_url
    assert renamed.find(path, NS).get("location") == (
        f"http://localhost:{port}/soap/services"
    )


def test_it_declares_every_operation_document_literal(send):
    wsdl = wsdl_of(send.wsdl_url)

    port_type = {op.get("name") for op in wsdl.findall("wsdl:portType/*", NS)}
    binding = wsdl.find("wsdl:binding", NS)
    bound = {op.get("name") for op in binding.findall("wsdl:operation", NS)}
    bodies = binding.findall(".//soap:body", NS)
    assert port_type == OPERATIONS
    assert bound == OPERATIONS
    assert binding.find("soap:binding", NS).get("style") == "document"
    assert {body.get("use") for body in bodies} == {"literal"}


def test_the_embedded_schema_compiles(send):
    wsdl = wsdl_of(send.wsdl_url)

    schema = wsdl.find("wsdl:types/{http://www.w3.org/2001/XMLSchema}schema", NS)
    compiled = etree.XMLSchema(schema)
    assert compiled is not None


def test_other_paths_are_not_found(send):
    assert requests.get(f"{send.base_url}/soap/other", timeout=5).status_code == 404
