import re

import pytest
import requests


@pytest.fixture
def userdb(send):
    send.create_account("test-api-key-1", "test-user-key-1")
    return send.create_userdb(
        name="Shop <main>", fields=[("email", "STRING"), ("age", "INTEGER")]
    )


@pytest.fixture
def person(send, userdb):
    return send.add_subscriber(
        userdb["id"], {"email": "<b>ada</b>@example.com", "age": "36"}
    )


def page(send, path):
    response = requests.get(f"{send.base_url}{path}", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    return response.text


def edit(send, userdb, person, form):
    return requests.post(
        f"{send.base_url}/userdbs/{userdb['id']}/subscribers/{person['identifier']}",
        data=form,
        allow_redirects=False,
        timeout=5,
    )


def test_the_home_page_lists_userdbs_escaped(send, userdb, person):
    html = page(send, "/")

    assert f'href="/userdbs/{userdb["id"]}"' in html
    assert "Shop &lt;main&gt;" in html
    assert "<main>" not in html


def test_a_userdb_page_lists_its_subscribers(send, userdb, person):
    html = page(send, f"/userdbs/{userdb['id']}")

    assert "&lt;b&gt;ada&lt;/b&gt;@example.com" in html
    assert f"/subscribers/{person['identifier']}" in html


def test_a_subscriber_page_has_a_form_with_every_field(send, userdb, person):
    html = page(send, f"/userdbs/{userdb['id']}/subscribers/{person['identifier']}")

    names = re.findall(r'<input id="[^"]+" name="([^"]+)"', html)
    assert names == ["id", "lastModified", "email", "age"]
    assert 'name="lastModified" value="' in html
    assert 'value="36"' in html


def test_saving_the_form_edits_the_subscriber_as_in_send(send, userdb, person):
    response = edit(send, userdb, person, {"email": "eve@example.com", "age": ""})

    assert response.status_code == 303
    assert response.headers["Location"].endswith("?saved=1")
    (stored,) = send.subscribers(userdb["id"])
    assert stored["attributes"]["email"] == "eve@example.com"
    assert stored["attributes"]["age"] is None
    assert stored["attributes"]["lastModified"] > person["attributes"]["lastModified"]
    assert "Saved." in page(send, response.headers["Location"])


def test_an_invalid_value_shows_the_error_and_changes_nothing(send, userdb, person):
    response = edit(send, userdb, person, {"age": "old"})

    assert response.status_code == 400
    assert "invalid data for field age" in response.text
    assert 'value="old"' in response.text
    assert send.subscribers(userdb["id"]) == [person]


def test_a_missing_subscriber_page_is_404(send, userdb):
    url = f"{send.base_url}/userdbs/{userdb['id']}/subscribers/99"

    assert requests.get(url, timeout=5).status_code == 404


def test_a_bad_page_number_is_400(send, userdb):
    url = f"{send.base_url}/userdbs/{userdb['id']}?page=two"

    assert requests.get(url, timeout=5).status_code == 400
