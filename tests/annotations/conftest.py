"""Personas: the author of a claim, a colleague who reviews it, staff who moderate.
The stranger is the anonymous client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotations.models import Claim
from annotations.services import claim_create
from neurons.models import Model, Neuron
from neurons.references import resolve
from people.services import user_sign_up

PASSWORD = "a-long-password-1"


def sign_up(username: str, name: str, institution: str = "") -> User:
    return user_sign_up(
        username=username, password=PASSWORD, name=name, institution=institution
    ).user


@pytest.fixture
def author(db: None) -> User:
    return sign_up("ada", "Ada Author", "Circuits Lab")


@pytest.fixture
def colleague(db: None) -> User:
    return sign_up("cole", "Cole League", "Vision Institute")


@pytest.fixture
def third(db: None) -> User:
    return sign_up("tess", "Tess Third")


@pytest.fixture
def staff(db: None) -> User:
    user = sign_up("mod", "Mo Derator")
    user.is_staff = True
    user.save()
    return user


def client_for(user: User, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def target(inceptionv1: Model) -> Neuron:
    return resolve("inceptionv1/4c:447")


@pytest.fixture
def claim(author: User, target: Neuron) -> Claim:
    return claim_create(
        author=author,
        target=target,
        kind="circuit",
        label="car detector from windows and wheels",
        argument="Windows (4b:373) above wheels (4b:237).",
        expression="4c:447 = 4b:373 + 4b:237",
    )
