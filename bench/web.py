"""The web process: its memory and the time from its start to its first response.

Starts gunicorn (one worker) on a fresh SQLite catalog, twice side by side: as the site
runs it, and with torch imported first (what every web process paid before the site
stopped importing it). Prints RSS and time to the first 200 of a neuron page, and the
ratios. Targets: RSS < 150 MB, first response < 0.5 s.

As deployed, the processes read compiled bytecode: it is cached in the run's temporary
folder (``PYTHONPYCACHEPREFIX``), written by one untimed start of each before the timed ones.

    .venv/bin/python bench/web.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = "/models/inceptionv1/mixed4c/447/"
GUNICORN = (
    "import sys; {preload}"
    "from gunicorn.app.wsgiapp import run; "
    "sys.argv = ['gunicorn', 'microscope.wsgi:application', '-w', '1', '-b', '127.0.0.1:{port}',"
    " '--log-level', 'warning']; run()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def one_run(env: dict[str, str], preload: str) -> tuple[float, float]:
    port = free_port()
    code = GUNICORN.format(preload=preload, port=port)
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
    try:
        deadline = start + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{PAGE}", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.perf_counter() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not answer") from None
                time.sleep(0.01)
        first = time.perf_counter() - start
        workers = children(server.pid)
        return first, rss_mb(workers[0] if workers else server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var:
        skip = ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env |= {
            "MICROSCOPE_VAR_DIR": var,
            "DJANGO_SETTINGS_MODULE": "microscope.settings",
            "PYTHONPYCACHEPREFIX": str(Path(var) / "pycache"),
        }
        for command in (["migrate", "--no-input", "-v0"], ["add_model", "inceptionv1", "-v0"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True)
        results: dict[str, list[tuple[float, float]]] = {"site": [], "with torch": []}
        one_run(env, "")  # the bytecode cache, for both
        one_run(env, "import torch; ")
        for _ in range(args.runs):  # interleaved, so that load hits both alike
            results["site"].append(one_run(env, ""))
            results["with torch"].append(one_run(env, "import torch; "))
    print(f"{'process':<12} {'first response':>15} {'RSS':>9}   (median of {args.runs})")
    medians = {}
    for name, runs in results.items():
        first = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        medians[name] = (first, rss)
        print(f"{name:<12} {first:>13.2f} s {rss:>6.0f} MB")
    site, torch_ = medians["site"], medians["with torch"]
    print(
        f"site / with torch: first response {site[0] / torch_[0]:.2f}x, "
        f"RSS {site[1] / torch_[1]:.2f}x"
    )
    print(
        f"targets: RSS < 150 MB ({'met' if site[1] < 150 else 'missed'}), "
        f"first response < 0.5 s ({'met' if site[0] < 0.5 else 'missed'})"
    )


if __name__ == "__main__":
    main()
