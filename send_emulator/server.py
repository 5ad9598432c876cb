"""The emulator's HTTP front: SOAP endpoint, WSDL, control API, HTML pages.

GET  /soap/services?wsdl         the WSDL, addressed to the host asked
POST /soap/services              the ClabService operations
/_control/...                    JSON control API for tests and demos
GET  /                           HTML pages to browse and edit data
"""

from __future__ import annotations

import http.server
import json
import logging
import random
import threading
import time
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from . import errors, pages, store, wsdl
from .control import dispatch
from .runtime import Counters, Faults, Limiter, RateLimitFault, Tokens
from .service import ClabService

logger = logging.getLogger(__name__)

SOAP_PATH = "/soap/services"
MAX_BODY_BYTES = 64 * 1024 * 1024
# Longer than any sensible client timeout: a "timeout" fault hangs this long
# unless the emulator is reset or stopped first.
HANG_SECONDS = 60.0
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True
)


class Emulator:
    """The state shared by every request thread."""

    def __init__(
        self, data_path: str, *, token_ttl: float, faults: Faults | None = None
    ) -> None:
        self.store = store.Store(data_path)
        self.tokens = Tokens(token_ttl)
        self.counters = Counters()
        self.limiter = Limiter()
        self.default_faults = faults or Faults()
        self.faults = self.default_faults
        self.service = ClabService(self.store, self.tokens, self.counters)
        self._release = threading.Event()

    def reset(self) -> None:
        """Empty the store, end every session and restore the start limits."""
        self.release_hanging()
        self.store.reset()
        self.tokens.clear()
        self.limiter.clear()
        self.counters.clear()
        self.faults = self.default_faults

    def release_hanging(self) -> None:
        released, self._release = self._release, threading.Event()
        released.set()

    def hang(self) -> None:
        self._release.wait(HANG_SECONDS)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, Handler)
        self.emulator = emulator


class Dropped(Exception):
    """The answer is not sent: the connection is closed instead."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SendEmulator/1.0"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    # Headers and body go out in separate writes; with Nagle's algorithm on,
    # the body would wait for the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    server: Server

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    # Routing.

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        try:
            if path == SOAP_PATH and method == "GET" and query.lower() == "wsdl":
                self._send_wsdl()
            elif path == SOAP_PATH and method == "POST":
                self._soap()
            elif path.startswith("/_control/"):
                self._control(method, path, self._body())
            elif method in ("GET", "POST") and not path.startswith("/_"):
                self._page(method, path, query)
            else:
                self._send(404, b"not found\n", "text/plain")
        except Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            logger.exception("Request failed. method=%s path=%s", method, path)
            self.close_connection = True
            self._send(500, b"internal error\n", "text/plain")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(413, b"request body too large\n", "text/plain")
            raise Dropped
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self._send(status, body, "application/json")

    def _send_wsdl(self) -> None:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address)
        body = wsdl.render(f"http://{host}{SOAP_PATH}")
        self._send(200, body, "text/xml; charset=utf-8")

    # SOAP.

    def _soap(self) -> None:
        started = time.monotonic()
        operation = "unknown"
        status = 200
        try:
            operation, request = self._parse_envelope(self._body())
            self.emulator.counters.count("calls", operation)
            answer = self._perform(operation, request)
            self._send(200, _envelope(answer), "text/xml; charset=utf-8")
        except errors.ServiceFault as fault:
            status = fault.http_status
            self._send_fault(fault)
        except (Dropped, BrokenPipeError, ConnectionResetError):
            status = 0
            raise
        except Exception:
            logger.exception("SOAP call failed. operation=%s", operation)
            status = 500
            internal = errors.ServiceFault(errors.SERVER_ERROR, "internal error")
            self._send_fault(internal)
        finally:
            logger.debug(
                "SOAP call answered. operation=%s status=%s duration_ms=%d",
                operation,
                status,
                (time.monotonic() - started) * 1000,
            )

    def _parse_envelope(self, body: bytes) -> tuple[str, Any]:
        try:
            envelope = etree.fromstring(body, _PARSER)
        except etree.XMLSyntaxError as error:
            raise _bad_request(f"the request is not XML: {error}") from error
        request = envelope.find(f"{{{wsdl.SOAP_ENV}}}Body/*")
        if envelope.tag != f"{{{wsdl.SOAP_ENV}}}Envelope" or request is None:
            raise _bad_request("expected a SOAP 1.1 envelope with a body")
        name = etree.QName(request)
        if name.namespace != wsdl.NAMESPACE or name.localname not in wsdl.OPERATIONS:
            raise _bad_request(f"unknown operation {name.localname}")
        schema = wsdl.schema()
        if not schema.validate(request):
            problem = schema.error_log.last_error
            raise _bad_request(f"the request does not match the schema: {problem}")
        return name.localname, request

    def _perform(self, operation: str, request: Any) -> Any:
        emulator = self.emulator
        faults = emulator.faults
        account = emulator.service.account_of(operation, request)
        try:
            with emulator.limiter.admit(account, faults):
                if faults.latency_ms:
                    time.sleep(faults.latency_ms / 1000)
                self._maybe_fail(faults)
                answer = emulator.service.call(operation, request, account)
                if random.random() < faults.lost_answer_rate:
                    emulator.counters.count("faults", "lostAnswer")
                    raise Dropped
                return answer
        except RateLimitFault as fault:
            emulator.counters.count("faults", f"rateLimited.{fault.kind}")
            raise

    def _maybe_fail(self, faults: Faults) -> None:
        counters = self.emulator.counters
        if random.random() < faults.error_rate:
            counters.count("faults", "error")
            self._send(503, b"", "text/plain")
            raise Dropped
        if random.random() < faults.timeout_rate:
            counters.count("faults", "timeout")
            self.emulator.hang()
            raise Dropped

    def _send_fault(self, fault: errors.ServiceFault) -> None:
        self.emulator.counters.count("soap_faults", fault.code)
        envelope = etree.Element(
            f"{{{wsdl.SOAP_ENV}}}Envelope",
            nsmap={"soap": wsdl.SOAP_ENV, "tns": wsdl.NAMESPACE},
        )
        body = etree.SubElement(envelope, f"{{{wsdl.SOAP_ENV}}}Body")
        element = etree.SubElement(body, f"{{{wsdl.SOAP_ENV}}}Fault")
        etree.SubElement(element, "faultcode").text = f"soap:{fault.soap_code}"
        etree.SubElement(element, "faultstring").text = fault.message
        detail = etree.SubElement(
            etree.SubElement(element, "detail"), f"{{{wsdl.NAMESPACE}}}ClabServiceFault"
        )
        etree.SubElement(detail, f"{{{wsdl.NAMESPACE}}}code").text = fault.code
        etree.SubElement(detail, f"{{{wsdl.NAMESPACE}}}message").text = fault.message
        if fault.field is not None:
            etree.SubElement(detail, f"{{{wsdl.NAMESPACE}}}field").text = fault.field
        body_bytes = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
        self._send(fault.http_status, body_bytes, "text/xml; charset=utf-8")

    # Control API.

    def _control(self, method: str, path: str, raw: bytes) -> None:
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            self._send_json(400, {"error": "the body is not JSON"})
            return
        status, answer = dispatch(self.emulator, method, path, payload)
        self._send_json(status, answer)

    # HTML pages.

    def _page(self, method: str, path: str, query: str) -> None:
        form = self._body().decode() if method == "POST" else ""
        status, body, location = pages.render(self.emulator, method, path, query, form)
        if location is not None:
            self.send_response(303)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(status, body.encode(), "text/html; charset=utf-8")


def _envelope(answer: Any) -> bytes:
    envelope = etree.Element(
        f"{{{wsdl.SOAP_ENV}}}Envelope",
        nsmap={"soap": wsdl.SOAP_ENV, "xsi": wsdl.XSI, "tns": wsdl.NAMESPACE},
    )
    etree.SubElement(envelope, f"{{{wsdl.SOAP_ENV}}}Body").append(answer)
    body: bytes = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return body


def _bad_request(message: str) -> errors.ServiceFault:
    return errors.ServiceFault(errors.INVALID_REQUEST, message)
