"""What a lab's script does with Microscope's API (the README's example, run by the tests).

    MICROSCOPE_URL=http://127.0.0.1:8000 MICROSCOPE_TOKEN=msc_... python examples/api_example.py

Needs only `requests`. Reading needs no token; writing does (create one at /account/tokens/).
"""

import json
import os

import requests

BASE = os.environ.get("MICROSCOPE_URL", "http://127.0.0.1:8000").rstrip("/") + "/api/v1"
session = requests.Session()
session.headers["Authorization"] = f"Token {os.environ['MICROSCOPE_TOKEN']}"


def check(response):
    """Stop with the API's own message on any error: {"error": {"message": ..., "fields": ...}}."""
    if not response.ok:
        raise SystemExit(f"{response.status_code}: {json.dumps(response.json()['error'])}")
    return response.json()


# 1. The layers of InceptionV1.
layers = check(session.get(f"{BASE}/models/inceptionv1/layers/"))
print([(layer["name"], layer["alias"], layer["channels"]) for layer in layers])

# 2. A neuron, addressed portably, with its images (null where not rendered yet).
neuron = check(session.get(f"{BASE}/neurons/inceptionv1/mixed4c/447/"))
print(neuron["ref"], neuron["images"]["featurevis"], neuron["missing"])

# 3. A claim about it; neurons are references as text. The ETag names its revision.
response = session.post(
    f"{BASE}/claims/",
    json={
        "target": "inceptionv1/4c:447",
        "kind": "circuit",
        "label": "car detector from windows and wheels",
        "expression": "4c:447 = 0.8*4b:373 + 4b:237",
        "argument": "The strongest weights come from window and wheel detectors.",
    },
)
claim = check(response)
print("claim", claim["id"], claim["api_url"], response.headers["ETag"])

# An edit says which revision it is based on; a stale one gets 412, never a lost update.
edited = check(
    session.patch(
        claim["api_url"],
        json={"argument": "Window (4b:373) and wheel (4b:237) detectors feed it most."},
        headers={"If-Match": response.headers["ETag"]},
    )
)
print("now at revision", edited["revision"])

# 4. Review a colleague's claim about the same neuron (nobody reviews their own).
me = check(session.get(f"{BASE}/me/"))["username"]
claims = check(session.get(neuron["claims_url"]))["results"]
theirs = next(c for c in claims if c["author"] != me)
review = check(
    session.post(
        f"{theirs['api_url']}reviews/",
        json={
            "verdict": "support",
            "reason": "Its top dataset examples are cars.",
            "revision": theirs["revision"],  # the one I read; 409 if revised since
        },
    )
)
print("reviewed claim", theirs["id"], review["verdict"])

# 5. Every claim, revision and review of the model, as one portable JSON document.
export = check(session.get(f"{BASE}/export/", params={"model": "inceptionv1"}))
with open("inceptionv1-claims.json", "w") as file:
    json.dump(export, file, indent=1)
print(len(export["claims"]), "claims exported")
