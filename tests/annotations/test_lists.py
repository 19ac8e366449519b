"""Named lists of neurons with a note per entry: kept by their owner, shared by link, in
the API and in export/import."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from annotations.models import ListEntry, NeuronList
from neurons.models import Model

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_researcher_keeps_a_list_from_neuron_pages_and_shares_its_link(
    mobilenet: Model, inceptionv1: Model, alice: User, bob: User
) -> None:
    page = signed_in(alice)
    neuron_page = page.get("/models/inceptionv1/mixed3b/10/").content.decode()
    assert 'id="list-new-form"' in neuron_page and "In no list yet." in neuron_page
    response = page.post(
        "/lists/new/",
        {"title": "curve detectors in 3b", "neuron": "inceptionv1/3b:10", "note": "early curve",
         "back": "neuron"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response["Location"] == "/models/inceptionv1/mixed3b/10/"
    curves = NeuronList.objects.get()
    page.post("/lists/add/", {"list": curves.pk, "neuron": "inceptionv1/3b:379", "note": ""})
    page.post(f"/lists/{curves.pk}/add/", {"neuron": "mobilenet_v2/f10:3", "note": "for contrast"})
    again = page.post(f"/lists/{curves.pk}/add/", {"neuron": "3b:10", "note": "x"})
    assert again.status_code == 400 and b"names no model" in again.content
    page.post(f"/lists/{curves.pk}/add/", {"neuron": "inceptionv1/3b:10", "note": "renamed note"})
    assert [e.neuron.ref for e in curves.entries.all()] == [
        "inceptionv1/3b:10", "inceptionv1/3b:379", "mobilenet_v2/f10:3",
    ]  # fmt: skip
    assert curves.entries.get(neuron__index=10).note == "renamed note"  # added once

    # Anyone reads it at its link; only its owner changes it.
    shared = Client().get(curves.get_absolute_url()).content.decode()
    assert "curve detectors in 3b" in shared and "renamed note" in shared
    assert 'id="entry-add-form"' not in shared
    assert (
        "curve detectors in 3b" in Client().get("/models/inceptionv1/mixed3b/10/").content.decode()
    )
    intruder = signed_in(bob)
    assert (
        intruder.post(f"/lists/{curves.pk}/add/", {"neuron": "inceptionv1/4c:447"}).status_code
        == 403
    )
    assert intruder.post(f"/lists/{curves.pk}/edit/", {"delete": "1"}).status_code == 403
    for odd in ("x", "\u00b2", "9" * 5000):
        response = intruder.post("/lists/add/", {"list": odd, "neuron": "inceptionv1/4c:447"})
        assert response.status_code == 400 and b"list: " in response.content, odd
    assert ListEntry.objects.count() == 3

    page.post(f"/lists/{curves.pk}/remove/", {"neuron": "mobilenet_v2/f10:3"})
    assert ListEntry.objects.count() == 2
    refused = page.post(f"/lists/{curves.pk}/edit/", {"title": "  "})
    assert refused.status_code == 400 and b"title: this field is required" in refused.content
    page.post(f"/lists/{curves.pk}/edit/", {"delete": "1"})
    assert not NeuronList.objects.exists() and not ListEntry.objects.exists()


def test_an_edit_changes_only_what_it_sends_and_only_delete_1_deletes(
    inceptionv1: Model, alice: User, client_for: Callable
) -> None:
    page = signed_in(alice)
    page.post("/lists/new/", {"title": "cars", "description": "parts of cars"})
    cars = NeuronList.objects.get()
    page.post(f"/lists/{cars.pk}/add/", {"neuron": "inceptionv1/4b:373", "note": "wheel"})

    page.post(f"/lists/{cars.pk}/edit/", {"title": "car parts"})  # no description sent
    cars.refresh_from_db()
    assert (cars.title, cars.description) == ("car parts", "parts of cars")
    page.post(f"/lists/{cars.pk}/edit/", {"description": ""})  # sent empty: cleared
    cars.refresh_from_db()
    assert (cars.title, cars.description) == ("car parts", "")

    for value in ("0", "false", "", "yes"):
        refused = page.post(f"/lists/{cars.pk}/edit/", {"delete": value})
        assert refused.status_code == 400 and b"delete: send 1" in refused.content, value
    assert NeuronList.objects.filter(pk=cars.pk).exists()

    # Adding a neuron already there, with no note, keeps its note (web and API alike).
    page.post("/lists/add/", {"list": cars.pk, "neuron": "inceptionv1/4b:373", "note": ""})
    page.post(f"/lists/{cars.pk}/add/", {"neuron": "inceptionv1/4b:373"})
    api = client_for(alice)
    api.post(f"/api/v1/lists/{cars.pk}/entries/", {"neuron": "inceptionv1/4b:373"})
    assert cars.entries.get().note == "wheel"
    api.post(f"/api/v1/lists/{cars.pk}/entries/", {"neuron": "inceptionv1/4b:373", "note": ""})
    assert cars.entries.get().note == ""  # the API clears a note it is sent empty


def test_lists_over_the_api(
    inceptionv1: Model, alice: User, bob: User, api: APIClient, client_for: Callable
) -> None:
    mine, theirs = client_for(alice), client_for(bob)
    created = mine.post("/api/v1/lists/", {"title": "car parts", "description": "wheels"})
    assert created.status_code == 201
    body = created.json()
    url = body["api_url"]
    assert body["owner"] == "alice" and body["entries"] == [] and body["url"].endswith("/")
    added = mine.post(f"{url}entries/", {"neuron": "inceptionv1/4b:373", "note": "wheel"})
    assert added.status_code == 201
    assert added.json()["entries"][0]["neuron"] == "inceptionv1/4b:373"
    assert added.json()["entries"][0]["api_url"].endswith(
        "/api/v1/neurons/inceptionv1/mixed4b/373/"
    )
    assert api.get(url).json()["entries"][0]["note"] == "wheel"  # anyone reads
    assert [x["title"] for x in api.get("/api/v1/lists/?owner=alice").json()] == ["car parts"]
    assert api.get("/api/v1/lists/?owner=bob").json() == []

    for response in (
        theirs.post(f"{url}entries/", {"neuron": "inceptionv1/4b:237"}),
        theirs.patch(url, {"title": "mine now"}, format="json"),
        theirs.delete(url),
        api.post("/api/v1/lists/", {"title": "anonymous"}),
    ):
        assert response.status_code in (401, 403), response.content
    bad = mine.post(f"{url}entries/", {"neuron": "inceptionv1/9z:1"})
    assert bad.status_code == 400 and "neuron" in bad.json()["error"]["fields"]
    long = mine.post(f"{url}entries/", {"neuron": "inceptionv1/4b:237", "note": "n" * 2001})
    assert long.status_code == 400 and "note" in long.json()["error"]["fields"]
    empty = mine.post("/api/v1/lists/", {"title": ""})
    assert empty.status_code == 400 and "title" in empty.json()["error"]["fields"]
    for fixed in ("owner", "uid", "entries"):  # read only: refused, not ignored
        changed = mine.patch(url, {"title": "x", fixed: "bob"}, format="json")
        assert changed.status_code == 400 and fixed in changed.json()["error"]["fields"]
    nul = mine.patch(url, {"title": "a\x00b"}, format="json")
    assert nul.status_code == 400
    assert mine.patch(url, {"title": "car parts 2"}, format="json").json()["title"] == "car parts 2"
    removed = mine.post(f"{url}entries/remove/", {"neuron": "inceptionv1/4b:373"})
    assert removed.json()["entries"] == []
    assert mine.delete(url).status_code == 204 and api.get(url).status_code == 404


def test_lists_travel_in_exports_and_merge_by_uid(
    inceptionv1: Model, alice: User, staff: User, client_for: Callable
) -> None:
    mine = client_for(alice)
    url = mine.post("/api/v1/lists/", {"title": "curves"}).json()["api_url"]
    mine.post(f"{url}entries/", {"neuron": "inceptionv1/3b:10", "note": "early"})
    mine.post(f"{url}entries/", {"neuron": "inceptionv1/3b:379", "note": ""})
    document = client_for(staff).get("/api/v1/export/?model=inceptionv1").json()
    [exported] = document["lists"]
    assert exported["title"] == "curves" and exported["owner"] == "alice"
    assert exported["entries"] == [
        {"ref": "inceptionv1/3b:10", "note": "early"},
        {"ref": "inceptionv1/3b:379", "note": ""},
    ]
    assert "alice" in [p["username"] for p in document["people"]]

    mine.post(f"{url}entries/", {"neuron": "inceptionv1/4c:447", "note": "car"})
    newer_document = client_for(staff).get("/api/v1/export/?model=inceptionv1").json()

    # Restored from its own export (signed here): nothing of it here yet.
    NeuronList.objects.all().delete()
    report = client_for(staff).post("/api/v1/import/", document, format="json").json()
    assert (report["lists_created"], report["list_entries"]) == (1, 2)
    imported = NeuronList.objects.get()
    assert str(imported.uid) == exported["uid"] and imported.owner.username == "alice"
    # The same again adds nothing; a newer export with one more entry adds it.
    again = client_for(staff).post("/api/v1/import/", document, format="json").json()
    assert (again["lists_created"], again["list_entries"]) == (0, 0)
    newer = client_for(staff).post("/api/v1/import/", newer_document, format="json").json()
    assert (newer["lists_created"], newer["list_entries"]) == (0, 1)
    newer_document["lists"][0]["entries"].append({"ref": "mobilenet_v2/f10:3", "note": ""})
    wrong = client_for(staff).post("/api/v1/import/", newer_document, format="json")
    assert wrong.status_code == 400
    assert "lists.0.entries.3.ref" in wrong.json()["error"]["fields"]
    assert ListEntry.objects.count() == 3  # all or nothing
