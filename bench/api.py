"""Latency and throughput of the neuron page and the API under a realistic load.

Usage, from the repository root (PostgreSQL on 127.0.0.1:5432, trust auth):

    .venv/bin/python -m bench.api                 # seeds once, then measures
    .venv/bin/python -m bench.api --reseed        # drops the data and seeds again

It uses its own database (``microscope_bench`` unless --database-url says otherwise), seeds
it once with 4 organisms (~25k neurons), 100,000 claims with their terms and 300,000
reviews (bulk inserts), serves the site with gunicorn on loopback and prints, for the neuron
page, the neuron API item, the claim list filtered by neuron and the search: the queries
per request, median and p99 latency over sequential requests, and requests per second
under 16 concurrent clients. Targets: p99 < 50 ms for single items, < 150 ms for filtered
lists and search.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/microscope_bench"
ORGANISMS = ["inceptionv1", "mobilenet_v2", "alexnet", "resnet50"]
# Words of claims: a few hundred a researcher would write, drawn Zipf-like so that some are
# everywhere and most are rare, as in real text.
REAL_WORDS = (
    "car wheel window dog fur snout eye face curve edge line texture stripe spot color "
    "contrast boundary circle dome grid fence bird feather beak insect leg wing flower "
    "petal leaf tree bark sky water wave cloud shadow light dark red green blue yellow "
    "orange purple brown black white high low frequency detector orientation angle corner "
    "junction texture pattern repeating object part whole head body tail ear nose mouth "
    "tooth hand finger text letter digit sign shape round square triangle diagonal "
    "horizontal vertical small large center surround excitatory inhibitory unit channel "
    "neuron layer weight positive negative strong weak polysemantic curve-detector "
    "invariance pose scale rotation lighting background foreground occlusion boundary "
    "motion blur noise adversarial robust feature circuit branch merge union equivariant "
    "copy mirror symmetric asymmetric early late mixed"
).split()
SYLLABLES = "ka ri lo ma ne tu so vi da pe ga ho zu mi fo be ly xa qui ren tal dor"


def _configure(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microscope.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def _database_create(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


# Seeding ----------------------------------------------------------------------------------


def _words(rng: random.Random) -> tuple[list[str], list[float]]:
    syllables = SYLLABLES.split()
    synthetic = {
        "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(3000)
    }
    words = REAL_WORDS + sorted(synthetic)
    rng.shuffle(words)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    return words, weights


def seed(*, claims: int, reviews: int, users: int, rng: random.Random) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.core.management.color import no_style
    from django.db import connection, transaction

    from annotations.models import Claim, ClaimRevision, ClaimTerm, Review
    from annotations.services import claim_status_decide
    from neurons.models import Layer, Neuron
    from neurons.services import model_register
    from people.models import Profile

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    for slug in ORGANISMS:
        registration = model_register(slug=slug)
        print(f"  {slug}: {registration.neurons_created} neurons")
    User = get_user_model()
    with transaction.atomic():
        User.objects.bulk_create(
            [User(username=f"researcher{i}", password="!") for i in range(users)],
            batch_size=2000,
        )
        people = list(User.objects.filter(username__startswith="researcher"))
        Profile.objects.bulk_create(
            [Profile(user=u, name=f"Researcher {u.pk}", institution="Lab") for u in people]
        )
    layers = {layer.pk: layer for layer in Layer.objects.select_related("model")}
    neurons = list(Neuron.objects.values_list("pk", "layer_id", "index"))
    by_layer: dict[int, list[tuple[int, int, int]]] = {}
    for neuron in neurons:
        by_layer.setdefault(neuron[1], []).append(neuron)
    print(f"  {len(neurons)} neurons, {len(people)} people ({time.perf_counter() - started:.0f}s)")

    # Targets Zipf-like too: a few famous neurons have hundreds of claims.
    hot = rng.sample(neurons, 200)
    words, weights = _words(rng)

    def text(count: int) -> str:
        return " ".join(rng.choices(words, weights, k=count))

    claim_rows: list[Claim] = []
    revision_rows: list[ClaimRevision] = []
    term_rows: list[ClaimTerm] = []
    review_rows: list[Review] = []
    verdicts = ["support", "support", "dispute", "needs_evidence"]
    per_claim = reviews / claims
    for pk in range(1, claims + 1):
        target = rng.choice(hot) if rng.random() < 0.2 else rng.choice(neurons)
        layer = layers[target[1]]
        below = [lyr for lyr in layers.values() if lyr.model_id == layer.model_id]
        below = [lyr for lyr in below if lyr.position < layer.position]
        circuit = bool(below) and rng.random() < 0.3
        author = rng.choice(people)
        terms = [(target[0], "target", 1.0)]
        expression = ""
        if circuit:
            parts = []
            for position in range(rng.randint(2, 4)):
                component = rng.choice(by_layer[rng.choice(below).pk])
                if any(component[0] == t[0] for t in terms):
                    continue
                coefficient = rng.choice([1.0, 0.5, 0.8, -1.0, -0.25])
                terms.append((component[0], "component", coefficient))
                short = f"{layers[component[1]].alias}:{component[2]}"
                factor = "" if abs(coefficient) == 1 else f"{abs(coefficient):g}*"
                sign = (
                    ("-" if coefficient < 0 else "")
                    if position == 0
                    else ("- " if coefficient < 0 else "+ ")
                )
                parts.append(f"{sign}{factor}{short}")
            expression = f"{layer.alias}:{target[2]} = {' '.join(parts)}"
        count = int(per_claim) + (rng.random() < per_claim % 1)
        reviewers = [p for p in rng.sample(people, count + 1) if p.pk != author.pk][:count]
        chosen = [rng.choice(verdicts) for _ in reviewers]
        retracted = rng.random() < 0.02
        status = claim_status_decide(retracted=retracted, verdicts=chosen)
        claim_rows.append(
            Claim(
                pk=pk,
                kind="circuit" if circuit else "feature",
                target_id=target[0],
                author=author,
                current_revision_id=pk,  # inserted below, in the same transaction
                status=status,
                support_count=chosen.count("support"),
                dispute_count=chosen.count("dispute"),
                needs_evidence_count=chosen.count("needs_evidence"),
                retracted=retracted,
                hidden=rng.random() < 0.005,
            )
        )
        revision_rows.append(
            ClaimRevision(
                pk=pk,
                claim_id=pk,
                number=1,
                label=text(rng.randint(2, 6)),
                expression=expression,
                argument=text(rng.randint(20, 120)),
                author=author,
            )
        )
        term_rows += [
            ClaimTerm(revision_id=pk, neuron_id=n, role=role, coefficient=c, position=i)
            for i, (n, role, c) in enumerate(terms)
        ]
        review_rows += [
            Review(
                claim_id=pk,
                revision_id=pk,
                reviewer=reviewer,
                verdict=verdict,
                reason=text(rng.randint(5, 30)),
            )
            for reviewer, verdict in zip(reviewers, chosen, strict=True)
        ]
    print(f"  generated in {time.perf_counter() - started:.0f}s; inserting")
    with transaction.atomic():
        Claim.objects.bulk_create(claim_rows, batch_size=5000)
        ClaimRevision.objects.bulk_create(revision_rows, batch_size=5000)
        ClaimTerm.objects.bulk_create(term_rows, batch_size=10000)
        Review.objects.bulk_create(review_rows, batch_size=10000)
        with connection.cursor() as cursor:
            # Spread over two years, newest last (auto_now_add stamped them all "now").
            cursor.execute(
                "UPDATE annotations_claim SET created = now() - (%s - id) * interval '10 minutes',"
                " updated = now() - (%s - id) * interval '10 minutes'",
                [claims, claims],
            )
            cursor.execute(
                "UPDATE annotations_claimrevision r SET created = c.created "
                "FROM annotations_claim c WHERE c.id = r.claim_id"
            )
            cursor.execute(
                "UPDATE annotations_review SET created = now() - (%s - claim_id) * "
                "interval '10 minutes' + interval '1 day'",
                [claims],
            )
            for sql in connection.ops.sequence_reset_sql(no_style(), [Claim, ClaimRevision]):
                cursor.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"  {len(claim_rows)} claims, {len(term_rows)} terms, {len(review_rows)} reviews "
        f"seeded in {time.perf_counter() - started:.0f}s"
    )


def seeded(claims: int) -> bool:
    from django.db import connection
    from django.db.utils import ProgrammingError

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM annotations_claim")
            return cursor.fetchone()[0] >= claims
    except ProgrammingError:
        return False


def wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


# Measuring ----------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    urls: list[str]  # rotated through, so that no single row is all that is measured
    target_ms: float


def endpoints(rng: random.Random) -> list[Endpoint]:
    from django.db.models import Count

    from annotations.models import ClaimTerm
    from neurons.models import Neuron

    famous = list(ClaimTerm.objects.values("neuron").annotate(n=Count("id")).order_by("-n")[:5])
    ids = [row["neuron"] for row in famous] + rng.sample(
        list(Neuron.objects.values_list("pk", flat=True)), 15
    )
    neurons = list(Neuron.objects.filter(pk__in=ids).select_related("layer__model"))
    rng.shuffle(neurons)
    words = ["wheel", "dog fur", "curve detector", "texture", "boundary", "polysemantic"]
    words += [REAL_WORDS[-1], "symmetric"]
    return [
        Endpoint("neuron page", [n.get_absolute_url() for n in neurons], 50),
        Endpoint(
            "neuron API item",
            [f"/api/v1/neurons/{n.layer.model.slug}/{n.layer.name}/{n.index}/" for n in neurons],
            50,
        ),
        Endpoint(
            "claims by neuron (API)",
            [f"/api/v1/claims/?neuron={quote(n.ref)}" for n in neurons],
            150,
        ),
        Endpoint("search (API)", [f"/api/v1/claims/?q={quote(w)}" for w in words], 150),
        Endpoint("search (page)", [f"/claims/?q={quote(w)}" for w in words], 150),
    ]


def queries_per_request(url: str) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = Client().get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


def get(port: int, url: str) -> float:
    """One request on a fresh connection (gunicorn's sync workers close them); seconds."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", url)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    finally:
        connection.close()
    return time.perf_counter() - started


def sequential(port: int, endpoint: Endpoint, count: int, seconds: float) -> list[float]:
    """Latencies of ``count`` requests one after another (fewer if ``seconds`` run out)."""
    deadline = time.perf_counter() + seconds
    times: list[float] = []
    while len(times) < count and time.perf_counter() < deadline:
        times.append(get(port, endpoint.urls[len(times) % len(endpoint.urls)]))
    return times


def concurrent(port: int, endpoint: Endpoint, clients: int, seconds: float, cap: int) -> float:
    """Requests per second with ``clients`` threads for ``seconds`` (or ``cap`` requests)."""
    done = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < deadline:
            with lock:
                if done >= cap:
                    return
                done += 1
            get(port, endpoint.urls[i % len(endpoint.urls)])
            i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done / (time.perf_counter() - started)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def serve(database_url: str, port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "API_THROTTLE_ANON": "",  # the benchmark is one client address sending thousands
        "API_THROTTLE_USER": "",
        "DATABASE_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        str(REPO / ".venv" / "bin" / "gunicorn"),
        "microscope.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--preload",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    for _ in range(120):
        try:
            get(port, "/api/v1/models/")
            return server
        except (OSError, RuntimeError):
            if server.poll() is not None:
                raise SystemExit("gunicorn did not start") from None
            time.sleep(0.5)
    raise SystemExit("gunicorn did not answer in 60 s")


def measure(args: argparse.Namespace, rng: random.Random) -> None:
    targets = endpoints(rng)
    counts = {e.name: max(queries_per_request(url) for url in e.urls[:5]) for e in targets}
    server = serve(args.database_url, args.port, args.workers)
    try:
        rows = []
        for endpoint in targets:
            sequential(args.port, endpoint, args.warmup, args.seconds)
            times = sequential(args.port, endpoint, args.requests, 6 * args.seconds)
            rps = concurrent(args.port, endpoint, args.clients, args.seconds, args.cap)
            median, p99 = statistics.median(times) * 1000, percentile(times, 0.99) * 1000
            p90 = percentile(times, 0.9) * 1000
            verdict = "ok" if p99 < endpoint.target_ms else "SLOW"
            rows.append((endpoint, len(times), median, p90, p99, rps, verdict))
            print(f"  {endpoint.name}: p99 {p99:.1f} ms, {rps:.0f} req/s", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(
        f"\n{'endpoint':<24} {'queries':>7} {'median ms':>10} {'p90 ms':>7} {'p99 ms':>8} "
        f"{'target':>7} "
        f"{'req/s @' + str(args.clients):>10}"
    )
    for endpoint, _, median, p90, p99, rps, verdict in rows:
        print(
            f"{endpoint.name:<24} {counts[endpoint.name]:>7} {median:>10.1f} {p90:>7.1f} "
            f"{p99:>8.1f} "
            f"{'<' + format(endpoint.target_ms, 'g'):>7} {rps:>10.0f}  {verdict}"
        )
    print(
        f"\n{min(row[1] for row in rows)}-{args.requests} sequential requests per endpoint "
        f"(at most {6 * args.seconds:g}s) after {args.warmup} to warm up; "
        f"{args.clients} concurrent clients for {args.seconds:g}s (at most {args.cap} requests); "
        f"gunicorn with {args.workers} sync workers; client and server on {os.cpu_count()} CPUs."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reseed", action="store_true", help="drop the data and seed again")
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=300_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200, help="sequential, per endpoint")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0, help="concurrent, per endpoint")
    parser.add_argument("--cap", type=int, default=2000, help="concurrent requests at most")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens
    if urlsplit(args.database_url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SystemExit("the benchmark runs on a local PostgreSQL only")

    _database_create(args.database_url)
    _configure(args.database_url)
    rng = random.Random(1)
    if args.reseed:
        wipe()
    if not seeded(args.claims):
        if args.reseed is False:
            wipe()
        print("Seeding (once; --reseed to do it again):")
        seed(claims=args.claims, reviews=args.reviews, users=args.users, rng=rng)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # indexes added since the seeding
    measure(args, rng)


if __name__ == "__main__":
    main()
