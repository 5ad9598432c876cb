"""The WSDL of the emulated ClabService (SOAP 1.1, document/literal wrapped).

Each operation takes one element named after it and answers with
`<operation>Response`, whose `return` child (if any) carries the result.
The embedded XML Schema is also used to validate every request, so a
client that builds a malformed message gets a fault, as with the real
service.
"""

from __future__ import annotations

import functools

from lxml import etree  # type: ignore[import-untyped]

NAMESPACE = "urn:send-emulator:clab"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_PAGE = """
      <xsd:element name="currentPageNumber" type="xsd:int"/>
      <xsd:element name="pageSize" type="xsd:int"/>
      <xsd:element name="totalElements" type="xsd:long"/>
      <xsd:element name="totalPages" type="xsd:int"/>"""

_TYPES = f"""
  <xsd:simpleType name="FieldType">
    <xsd:restriction base="xsd:string">
      <xsd:enumeration value="FLAG"/><xsd:enumeration value="DATE"/>
      <xsd:enumeration value="DATETIME"/><xsd:enumeration value="DOUBLE"/>
      <xsd:enumeration value="INTEGER"/>
      <xsd:enumeration value="POSITIVE_INTEGER"/>
      <xsd:enumeration value="LONG"/><xsd:enumeration value="CHAR"/>
      <xsd:enumeration value="STRING"/><xsd:enumeration value="TEXT"/>
      <xsd:enumeration value="TIME"/><xsd:enumeration value="TIMESTAMP"/>
    </xsd:restriction>
  </xsd:simpleType>
  <xsd:simpleType name="SortDirection">
    <xsd:restriction base="xsd:string">
      <xsd:enumeration value="ASC"/><xsd:enumeration value="DESC"/>
    </xsd:restriction>
  </xsd:simpleType>
  <xsd:simpleType name="LookupMatchingMode">
    <xsd:restriction base="xsd:string">
      <xsd:enumeration value="EQUALS"/><xsd:enumeration value="NOT_EQUALS"/>
      <xsd:enumeration value="GREATER"/>
      <xsd:enumeration value="GREATER_EQUALS"/>
      <xsd:enumeration value="LESS"/><xsd:enumeration value="LESS_EQUALS"/>
      <xsd:enumeration value="IN"/><xsd:enumeration value="LIKE"/>
    </xsd:restriction>
  </xsd:simpleType>
  <xsd:complexType name="AuthToken">
    <xsd:sequence><xsd:element name="content" type="xsd:string"/></xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SubscriberSourceField">
    <xsd:sequence>
      <xsd:element name="name" type="xsd:string"/>
      <xsd:element name="type" type="tns:FieldType"/>
      <xsd:element name="emailField" type="xsd:boolean"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SubscriberSource">
    <xsd:sequence>
      <xsd:element name="identifier" type="xsd:long"/>
      <xsd:element name="name" type="xsd:string"/>
      <xsd:element name="description" type="xsd:string"/>
      <xsd:element name="subscriberIdentifierFieldName" type="xsd:string"/>
      <xsd:element name="fields" type="tns:SubscriberSourceField"
                   minOccurs="0" maxOccurs="unbounded"/>
      <xsd:element name="charset" type="xsd:string"/>
      <xsd:element name="locked" type="xsd:boolean"/>
      <xsd:element name="readOnly" type="xsd:boolean"/>
      <xsd:element name="hasExternalKey" type="xsd:boolean"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="LookupPreferences">
    <xsd:sequence>
      <xsd:element name="sortingField" type="xsd:string" minOccurs="0"/>
      <xsd:element name="sortingDirection" type="tns:SortDirection"
                   minOccurs="0"/>
      <xsd:element name="pageNumber" type="xsd:int" minOccurs="0"/>
      <xsd:element name="pageSize" type="xsd:int" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SubscriberAttribute">
    <xsd:sequence>
      <xsd:element name="key" type="xsd:string"/>
      <xsd:element name="value" type="xsd:string" minOccurs="0"
                   nillable="true"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Subscriber">
    <xsd:sequence>
      <xsd:element name="identifier" type="xsd:long" minOccurs="0"/>
      <xsd:element name="attributes" type="tns:SubscriberAttribute"
                   minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Subscribers">
    <xsd:sequence>{_PAGE}
      <xsd:element name="currentPageItems" type="tns:Subscriber"
                   minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SubscriberSources">
    <xsd:sequence>{_PAGE}
      <xsd:element name="currentPageItems" type="tns:SubscriberSource"
                   minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Subscription">
    <xsd:sequence>
      <xsd:element name="id" type="xsd:long"/>
      <xsd:element name="name" type="xsd:string"/>
      <xsd:element name="registrationField" type="xsd:string"/>
      <xsd:element name="webformCode" type="xsd:string"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Subscriptions">
    <xsd:sequence>{_PAGE}
      <xsd:element name="currentPageItems" type="tns:Subscription"
                   minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="SubscriberAttributeFilter">
    <xsd:sequence>
      <xsd:element name="attributeName" type="xsd:string"/>
      <xsd:element name="attributeValue" type="xsd:string" minOccurs="0"
                   nillable="true"/>
      <xsd:element name="lookupMatchingMode" type="tns:LookupMatchingMode"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Sorting">
    <xsd:sequence>
      <xsd:element name="attributeName" type="xsd:string"/>
      <xsd:element name="direction" type="tns:SortDirection"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="Pagination">
    <xsd:sequence>
      <xsd:element name="sorting" type="tns:Sorting" minOccurs="0"/>
      <xsd:element name="currentPage" type="xsd:int" minOccurs="0"/>
      <xsd:element name="pageSize" type="xsd:int" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:complexType name="ClabServiceFault">
    <xsd:sequence>
      <xsd:element name="code" type="xsd:string"/>
      <xsd:element name="message" type="xsd:string"/>
      <xsd:element name="field" type="xsd:string" minOccurs="0"/>
    </xsd:sequence>
  </xsd:complexType>
  <xsd:element name="ClabServiceFault" type="tns:ClabServiceFault"/>
"""

_AUTH = '<xsd:element name="token" type="tns:AuthToken"/>'
_SOURCE = '<xsd:element name="sourceIdentifier" type="xsd:long"/>'
_SUBSCRIBER_ID = '<xsd:element name="subscriberIdentifier" type="xsd:long"/>'
_MANY = 'minOccurs="0" maxOccurs="unbounded"'

# Operation name -> (request children, response `return` declaration).
OPERATIONS: dict[str, tuple[str, str]] = {
    "borrowToken": (
        '<xsd:element name="apiKey" type="xsd:string"/>'
        '<xsd:element name="userKey" type="xsd:string"/>',
        '<xsd:element name="return" type="tns:AuthToken"/>',
    ),
    "keepaliveToken": (_AUTH, ""),
    "invalidateToken": (_AUTH, ""),
    "getSubscriberSource": (
        _AUTH + _SOURCE,
        '<xsd:element name="return" type="tns:SubscriberSource"/>',
    ),
    "findSubscriberSources": (
        _AUTH + '<xsd:element name="lookupPrefs" type="tns:LookupPreferences"'
        ' minOccurs="0"/>',
        '<xsd:element name="return" type="tns:SubscriberSources"/>',
    ),
    "isSubscriberSourceLocked": (
        _AUTH + '<xsd:element name="subscriberSourceId" type="xsd:long"/>',
        '<xsd:element name="return" type="xsd:boolean"/>',
    ),
    "countSubscribers": (
        _AUTH + _SOURCE,
        '<xsd:element name="return" type="xsd:long"/>',
    ),
    "getSubscriber": (
        _AUTH + _SOURCE + _SUBSCRIBER_ID,
        '<xsd:element name="return" type="tns:Subscriber"/>',
    ),
    "findSubscribers": (
        _AUTH
        + _SOURCE
        + '<xsd:element name="attribute" type="tns:SubscriberAttribute"/>'
        '<xsd:element name="lookupPrefs" type="tns:LookupPreferences"'
        ' minOccurs="0"/>',
        '<xsd:element name="return" type="tns:Subscribers"/>',
    ),
    "findSubscribersBy": (
        _AUTH + _SOURCE + '<xsd:element name="filterId" type="xsd:long" minOccurs="0"'
        ' nillable="true"/>'
        '<xsd:element name="useBaseFilter" type="xsd:boolean" minOccurs="0"/>'
        f'<xsd:element name="selectedAttribute" type="xsd:string" {_MANY}/>'
        '<xsd:element name="whereAttribute"'
        f' type="tns:SubscriberAttributeFilter" {_MANY}/>'
        '<xsd:element name="pagination" type="tns:Pagination" minOccurs="0"/>',
        '<xsd:element name="return" type="tns:Subscribers"/>',
    ),
    "addSubscriber": (
        _AUTH + _SOURCE + '<xsd:element name="subscriber" type="tns:Subscriber"/>',
        '<xsd:element name="return" type="tns:Subscriber"/>',
    ),
    "addSubscribers": (
        _AUTH
        + _SOURCE
        + f'<xsd:element name="subscribers" type="tns:Subscriber" {_MANY}/>',
        f'<xsd:element name="return" type="tns:Subscriber" {_MANY}/>',
    ),
    "updateSubscriber": (
        _AUTH + _SOURCE + '<xsd:element name="subscriber" type="tns:Subscriber"/>',
        '<xsd:element name="return" type="tns:Subscriber"/>',
    ),
    "removeSubscriber": (_AUTH + _SOURCE + _SUBSCRIBER_ID, ""),
    "findSubscriptionsBy": (
        _AUTH
        + f'<xsd:element name="attributes" type="tns:SubscriberAttribute" {_MANY}/>'
        '<xsd:element name="pagination" type="tns:Pagination" minOccurs="0"/>',
        '<xsd:element name="return" type="tns:Subscriptions"/>',
    ),
    "modifySubscriberSubscriptionStatus": (
        _AUTH
        + '<xsd:element name="webFormCode" type="xsd:string"/>'
        + _SUBSCRIBER_ID
        + '<xsd:element name="isSubscribed" type="xsd:boolean"/>',
        "",
    ),
}


def _element(name: str, children: str) -> str:
    return (
        f'<xsd:element name="{name}"><xsd:complexType><xsd:sequence>'
        f"{children}</xsd:sequence></xsd:complexType></xsd:element>"
    )


def _schema() -> str:
    elements = "".join(
        _element(name, request) + _element(name + "Response", response)
        for name, (request, response) in OPERATIONS.items()
    )
    return (
        f'<xsd:schema targetNamespace="{NAMESPACE}" elementFormDefault="qualified"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        f' xmlns:tns="{NAMESPACE}">{_TYPES}{elements}</xsd:schema>'
    )


def _operation_parts(name: str) -> tuple[str, str, str]:
    message = (
        f'<wsdl:message name="{name}Request">'
        f'<wsdl:part name="parameters" element="tns:{name}"/></wsdl:message>'
        f'<wsdl:message name="{name}Response">'
        f'<wsdl:part name="parameters" element="tns:{name}Response"/>'
        "</wsdl:message>"
    )
    port_operation = (
        f'<wsdl:operation name="{name}">'
        f'<wsdl:input message="tns:{name}Request"/>'
        f'<wsdl:output message="tns:{name}Response"/>'
        '<wsdl:fault name="ClabServiceFault" message="tns:ClabServiceFault"/>'
        "</wsdl:operation>"
    )
    binding_operation = (
        f'<wsdl:operation name="{name}"><soap:operation soapAction=""/>'
        '<wsdl:input><soap:body use="literal"/></wsdl:input>'
        '<wsdl:output><soap:body use="literal"/></wsdl:output>'
        '<wsdl:fault name="ClabServiceFault">'
        '<soap:fault name="ClabServiceFault" use="literal"/></wsdl:fault>'
        "</wsdl:operation>"
    )
    return message, port_operation, binding_operation


@functools.cache
def _template() -> str:
    parts = [_operation_parts(name) for name in OPERATIONS]
    messages = "".join(part[0] for part in parts)
    port_operations = "".join(part[1] for part in parts)
    binding_operations = "".join(part[2] for part in parts)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<wsdl:definitions name="ClabService"'
        f' targetNamespace="{NAMESPACE}" xmlns:tns="{NAMESPACE}"'
        ' xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"'
        ' xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<wsdl:types>{_schema()}</wsdl:types>"
        '<wsdl:message name="ClabServiceFault">'
        '<wsdl:part name="fault" element="tns:ClabServiceFault"/></wsdl:message>'
        f"{messages}"
        f'<wsdl:portType name="ClabService">{port_operations}</wsdl:portType>'
        '<wsdl:binding name="ClabServiceSoapBinding" type="tns:ClabService">'
        '<soap:binding style="document"'
        ' transport="http://schemas.xmlsoap.org/soap/http"/>'
        f"{binding_operations}</wsdl:binding>"
        '<wsdl:service name="ClabService">'
        '<wsdl:port name="ClabService" binding="tns:ClabServiceSoapBinding">'
        '<soap:address location="ADDRESS"/></wsdl:port></wsdl:service>'
        "</wsdl:definitions>"
    )


def render(address: str) -> bytes:
    """Return the WSDL with the service address set to `address`."""
    escaped = address.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return _template().replace('"ADDRESS"', f'"{escaped}"').encode()


@functools.cache
def schema() -> etree.XMLSchema:
    """Return the compiled XML Schema of the service's messages."""
    return etree.XMLSchema(etree.fromstring(_schema().encode()))
