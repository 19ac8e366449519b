"""Schema-driven fuzzing of every API operation: no 5xx, no response the schema does not allow.

Schemathesis builds requests from the OpenAPI schema the site serves and calls the WSGI app
in-process (no server). Its pytest plugin does not run on this pytest, so the test walks the
operations itself. Half the generated requests name things that exist (a claim, a neuron, a
job, the claim's current ETag), so that the fuzzing also reaches past the 404s. Examples are
few per operation to keep the test quick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import CHECKS as REGISTERED
from schemathesis.openapi import from_wsgi
from schemathesis.specs.openapi import checks as openapi_checks

from annotations.models import Claim
from annotations.services import claim_create
from api.claims import claim_etag
from api.services import api_token_create
from jobs.models import ArtifactKind, RenderJob
from neurons.models import Model
from neurons.references import resolve

# Every check schemathesis has (the OpenAPI ones register as their module loads), but one:
# positive_data_acceptance wants every schema-valid request accepted, and a filter or a
# reference that is well formed but names nothing here (model=vgg99, author=nobody) is a 400
# that says so, by design.
assert openapi_checks.positive_data_acceptance in REGISTERED.get_all()
CHECKS = [c for c in REGISTERED.get_all() if c is not openapi_checks.positive_data_acceptance]
# negative_data_rejection wants a body that breaks the schema refused, but a form body holds
# only strings: an "array" sent as a form field arrives as the text "[{}]", a valid string
# (a list's description). So that check is kept for JSON bodies, where types travel.
TYPED_BODIES = {None, "application/json"}
FORM_CHECKS = [c for c in CHECKS if c is not openapi_checks.negative_data_rejection]
EXAMPLES = 5
SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Seeded:
    claim: Claim
    path: dict[str, Any]
    token: dict[str, str]

    def aim(self, case: Case, aim: bool) -> Case:
        """Point the case at things that exist (when ``aim``)."""
        given = case.path_parameters or {}
        if any(type(given[k]) is not type(v) for k, v in self.path.items() if k in given):
            return case  # a negative case whose path is what is wrong: aimed, it would not be
        if aim:
            for name, value in self.path.items():
                if name in case.path_parameters:
                    case.path_parameters[name] = value
            if case.method.upper() in {"PUT", "PATCH"}:
                case.headers["If-Match"] = claim_etag(Claim.objects.get(pk=self.claim.pk))
        return case


@pytest.fixture
def wsgi_in_test_transaction() -> Iterator[None]:
    """Requests through the WSGI app keep the test's connection (and its transaction) open,
    as Django's test client does; else the handler closes it after each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def seeded(inceptionv1: Model) -> Seeded:
    """A small catalog, a claim of the fuzzer's (so edits can succeed), a render job."""
    user = User.objects.create_user("fuzzer")
    _, key = api_token_create(user=user, name="fuzz")
    claim = claim_create(
        author=user,
        target=resolve("inceptionv1/4c:447"),
        kind="feature",
        label="car detector",
        argument="Fires on cars.",
    )
    job = RenderJob.objects.create(model=inceptionv1, kind=ArtifactKind.EXAMPLES)
    path = {"model": "inceptionv1", "layer": "mixed4c", "index": 447, "id": claim.pk}
    path |= {"number": 1, "job_id": job.pk}
    return Seeded(claim=claim, path=path, token={"Authorization": f"Token {key}"})


def fuzz_operation(
    operation: Any, mode: GenerationMode, headers: dict[str, str], seeded: Seeded
) -> None:
    cases = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

    @given(case=cases.map(lambda pair: seeded.aim(*pair)))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        checks = CHECKS if case.media_type in TYPED_BODIES else FORM_CHECKS
        case.call_and_validate(headers=headers, checks=checks)

    run()


def test_every_operation_answers_within_its_schema(
    seeded: Seeded,
    settings_no_throttle: Callable[[], None],
    wsgi_in_test_transaction: None,
) -> None:
    schema = from_wsgi("/api/schema/?format=json", get_wsgi_application())
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        runs = [(GenerationMode.POSITIVE, seeded.token), (GenerationMode.NEGATIVE, seeded.token)]
        if operation.method.upper() in SAFE:
            runs.append((GenerationMode.POSITIVE, {}))  # anonymous clients read too
        for mode, headers in runs:
            try:
                fuzz_operation(operation, mode, headers, seeded)
            except Unsatisfiable:
                pass  # nothing in this operation's schema can be made invalid
            except Exception as exc:  # report every operation's failure, not just the first
                who = "token" if headers else "anonymous"
                failures.append(f"{operation.label} ({mode.value}, {who}):\n{exc}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)


def test_every_path_answers_options_and_an_html_accept_without_a_server_error(
    seeded: Seeded, settings_no_throttle: Callable[[], None], client: Any
) -> None:
    schema = client.get("/api/schema/?format=json").json()
    paths = list(schema["paths"])
    assert len(paths) >= 15
    problems = []
    for template in paths:
        path = template
        for name, value in seeded.path.items():
            path = path.replace("{" + name + "}", str(value))
        for who, headers in (("token", seeded.token), ("anonymous", {})):
            extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
            options = client.options(path, **extra)
            if options.status_code >= 500 or options["Content-Type"] != "application/json":
                problems.append(f"OPTIONS {path} ({who}): {options.status_code}")
            elif options.status_code == 200:
                assert set(options.json()["allowed_methods"]) >= {"OPTIONS"}
            if "get" in schema["paths"][template]:
                html = client.get(path, HTTP_ACCEPT="text/html", **extra)
                if html.status_code >= 500:
                    problems.append(f"GET {path} Accept: text/html ({who}): {html.status_code}")
    assert not problems, "\n".join(problems)
