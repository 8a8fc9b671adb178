"""Cloud Functions entry points. Each is deployed as its own function from this one source tree.

A request's path: the entry point here parses it into a model (shared/*_models.py), the store
(shared/*_store.py) reads and writes Firestore and asks a pure policy (shared/policies.py,
shared/agent.py) what to do.
"""
import pathlib
import re
import sys

# Deployed, the source root is /workspace with this file at functions/main.py
# (GOOGLE_FUNCTION_SOURCE); make the root importable so `shared` resolves as it does locally.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import functions_framework  # noqa: E402
import numpy as np  # noqa: E402

from shared.cpa_models import FeedbackRequest, SampleRequest, parse_id  # noqa: E402
from shared.cpa_store import CpaStore  # noqa: E402
from shared.firestore_client import get_db  # noqa: E402
from shared.http import ApiError, endpoint, query_and_body  # noqa: E402

_rng = np.random.default_rng()
_STATS_PATH = re.compile(r"^/offer_ids/([^/]+)/stats/?$")


def cpa_store() -> CpaStore:
    return CpaStore(get_db(), _rng)


@functions_framework.http
@endpoint("GET")
def sample(request):
    return cpa_store().sample(SampleRequest.model_validate(query_and_body(request))), 200


@functions_framework.http
@endpoint("PUT")
def feedback(request):
    return cpa_store().feedback(FeedbackRequest.model_validate(query_and_body(request))), 200


@functions_framework.http
@endpoint("GET")
def stats(request):
    match = _STATS_PATH.match(request.path)
    raw_id = match.group(1) if match else request.args.get("offer_id")
    if raw_id is None:
        raise ApiError(404, "use /offer_ids/<offer_id>/stats/", "offer_id")
    try:
        offer_id = parse_id(raw_id)
    except ValueError as error:
        raise ApiError(400, f"offer_id: {error}", "offer_id") from None
    return cpa_store().offer_stats(offer_id), 200
