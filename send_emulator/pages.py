"""Plain HTML pages to look at the emulator's data and edit a subscriber.

An edit made here counts as an edit made in Send: it bumps lastModified,
so a polling client sees it as a change coming from Send.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from typing import TYPE_CHECKING

from . import errors, store

if TYPE_CHECKING:
    from .server import Emulator

PAGE_SIZE = 50
Rendered = tuple[int, str, str | None]
_USERDB = re.compile(r"/userdbs/(\d+)")
_SUBSCRIBER = re.compile(r"/userdbs/(\d+)/subscribers/(\d+)")
_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    ".error{color:#b00}.note{color:#060}"
)


def render(
    emulator: Emulator, method: str, path: str, query: str, form: str
) -> Rendered:
    """Return (status, HTML, redirect location or None) for one request."""
    params = urllib.parse.parse_qs(query)
    try:
        if path == "/" and method == "GET":
            return 200, _home(emulator), None
        match = _USERDB.fullmatch(path)
        if match and method == "GET":
            page = int(params.get("page", ["1"])[0] or 1)
            return 200, _userdb(emulator, int(match[1]), max(page, 1)), None
        match = _SUBSCRIBER.fullmatch(path)
        if match and method == "GET":
            saved = "saved" in params
            return 200, _subscriber(emulator, int(match[1]), int(match[2]), saved), None
        if match and method == "POST":
            return _save(emulator, int(match[1]), int(match[2]), form)
    except errors.ServiceFault as fault:
        return 404, _layout("Not found", f"<p>{_e(fault.message)}</p>"), None
    except ValueError:
        return 400, _layout("Bad request", "<p>A number was expected.</p>"), None
    return 404, _layout("Not found", "<p>No such page.</p>"), None


def _home(emulator: Emulator) -> str:
    rows = "".join(
        f'<tr><td><a href="/userdbs/{info.id}">{info.id}</a></td>'
        f"<td>{_e(info.name)}</td><td>{emulator.store.count(info)}</td>"
        f"<td>{'yes' if info.locked else 'no'}</td></tr>"
        for info in emulator.store.userdbs()
    )
    table = (
        "<table><tr><th>userdb</th><th>name</th><th>subscribers</th>"
        f"<th>locked</th></tr>{rows}</table>"
    )
    return _layout("Send emulator: userdbs", table if rows else "<p>No userdb.</p>")


def _userdb(emulator: Emulator, userdb_id: int, page: int) -> str:
    info = emulator.store.userdb(userdb_id)
    total, records = emulator.store.find(info, [], page=page, page_size=PAGE_SIZE)
    names = [field.name for field in info.fields]
    head = "".join(f"<th>{_e(name)}</th>" for name in names)
    rows = "".join(
        "<tr>"
        + "".join(
            _cell(info.id, record.identifier, name, record.attributes[name])
            for name in names
        )
        + "</tr>"
        for record in records
    )
    pager = ""
    if page > 1:
        pager += f'<a href="?page={page - 1}">previous</a> '
    if page * PAGE_SIZE < total:
        pager += f'<a href="?page={page + 1}">next</a>'
    body = (
        f'<p><a href="/">all userdbs</a> | {total} subscribers, page {page}</p>'
        f"<table><tr>{head}</tr>{rows}</table><p>{pager}</p>"
    )
    return _layout(f"Userdb {info.id}: {info.name}", body)


def _cell(userdb_id: int, identifier: int, name: str, value: str | None) -> str:
    text = _e(value if value is not None else "")
    if name == store.ID_FIELD:
        link = f"/userdbs/{userdb_id}/subscribers/{identifier}"
        return f'<td><a href="{link}">{text}</a></td>'
    return f"<td>{text}</td>"


def _subscriber(
    emulator: Emulator,
    userdb_id: int,
    identifier: int,
    saved: bool,
    error: str = "",
    typed: dict[str, str] | None = None,
) -> str:
    info = emulator.store.userdb(userdb_id)
    record = emulator.store.get(info, identifier)
    if record is None:
        raise errors.ServiceFault(
            errors.SUBSCRIBER_NOT_FOUND, f"subscriber {identifier} does not exist"
        )
    inputs = "".join(
        _input(field, (typed or {}).get(field.name, record.attributes[field.name]))
        for field in info.fields
    )
    notice = '<p class="note">Saved.</p>' if saved else ""
    if error:
        notice = f'<p class="error">{_e(error)}</p>'
    body = (
        f'<p><a href="/userdbs/{info.id}">back to userdb {info.id}</a></p>{notice}'
        f'<form method="post"><table>{inputs}</table>'
        "<p>An empty box stores no value (null).</p>"
        '<button type="submit">Save</button></form>'
    )
    return _layout(f"Subscriber {identifier} of userdb {info.id}", body)


def _input(field: store.Field, value: str | None) -> str:
    readonly = " readonly" if field.name in store.SYSTEM_FIELDS else ""
    return (
        f'<tr><th><label for="f-{_e(field.name)}">{_e(field.name)}</label>'
        f" ({field.type})</th><td>"
        f'<input id="f-{_e(field.name)}" name="{_e(field.name)}"'
        f' value="{_e(value or "")}"{readonly}></td></tr>'
    )


def _save(emulator: Emulator, userdb_id: int, identifier: int, form: str) -> Rendered:
    info = emulator.store.userdb(userdb_id)
    typed = dict(urllib.parse.parse_qsl(form, keep_blank_values=True))
    changes = {
        name: value or None
        for name, value in typed.items()
        if name not in store.SYSTEM_FIELDS
    }
    try:
        emulator.store.update(info, identifier, changes, as_owner=True)
    except errors.ServiceFault as fault:
        if fault.code != errors.INVALID_DATA:
            raise
        page = _subscriber(emulator, userdb_id, identifier, False, fault.message, typed)
        return 400, page, None
    location = f"/userdbs/{userdb_id}/subscribers/{identifier}?saved=1"
    return 303, "", location


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1>{body}</body></html>"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)
