"""Cloud Functions entry points. Each is deployed as its own function from this one source tree.

A request's path: the entry point here parses it into a model (shared/*_models.py), the store
(shared/*_store.py) reads and writes Firestore and asks a pure policy (shared/policies.py,
shared/agent.py) what to do.
"""
import datetime
import os
import pathlib
import re
import sys

# Deployed, the source root is /workspace with this file at functions/main.py
# (GOOGLE_FUNCTION_SOURCE); make the root importable so `shared` resolves as it does locally.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import functions_framework  # noqa: E402
import numpy as np  # noqa: E402

from shared import agent, batch_job  # noqa: E402
from shared.cpa_models import FeedbackRequest, SampleRequest, parse_id  # noqa: E402
from shared.cpa_store import CpaStore  # noqa: E402
from shared.customer_models import PredictRequest, RewardRequest  # noqa: E402
from shared.customer_store import CustomerStore, slate_of  # noqa: E402
from shared.firestore_client import get_db  # noqa: E402
from shared.http import ApiError, endpoint, json_body, query_and_body  # noqa: E402

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


# -- Customer offers (Company A) -----------------------------------------------------------------
_agent_registered = False


def customer_store() -> CustomerStore:
    global _agent_registered
    store = CustomerStore(get_db(), _rng, os.environ.get("AGENT_POLICY", agent.DEFAULT_AGENT))
    if not _agent_registered:
        store.ensure_agent_registered()
        _agent_registered = True
    return store


def _prediction(request) -> tuple[CustomerStore, PredictRequest, str, dict]:
    store = customer_store()
    predict_request = PredictRequest.model_validate(json_body(request, required=True))
    episode_id, episode = store.predict(predict_request)
    return store, predict_request, episode_id, episode


def _prediction_answer(predict_request: PredictRequest, episode_id: str, episode: dict, offers) -> dict:
    return {
        "customer_id": predict_request.customer_id,
        "response-date": datetime.date.today().isoformat(),
        "best-three-offers": offers,
        "episode_id": episode_id,
        "policy": episode["policy"],
        "agent-version": episode["agent_version"],
    }


@functions_framework.http
@endpoint("GET")
def is_alive(request):
    latest = customer_store().latest_agent()
    return {"status": "I'm alive and running", "agent-version": f"{latest['version']}-API", "policy": latest.get("policy")}, 200


@functions_framework.http
@endpoint("POST")
def predict(request):
    _, predict_request, episode_id, episode = _prediction(request)
    return _prediction_answer(predict_request, episode_id, episode, slate_of(episode)), 200


@functions_framework.http
@endpoint("POST")
def predict_v2(request):
    store, predict_request, episode_id, episode = _prediction(request)
    slate = slate_of(episode)
    names = store.product_names(slate)
    answer = _prediction_answer(predict_request, episode_id, episode, names)
    missing = [offer for offer in slate if names[offer] is None]
    if missing:
        answer["missing-product-names"] = missing
    return answer, 200


@functions_framework.http
@endpoint("PUT")
def rewards(request):
    return customer_store().reward(RewardRequest.model_validate(json_body(request, required=True))), 200


# -- Batch scoring of client CSVs (Company B) ----------------------------------------------------
@functions_framework.cloud_event
def score_upload(cloud_event):
    """A file finalized in the inbox bucket: score it into the results bucket (shared/batch_job.py)."""
    batch_job.handle(cloud_event["id"], cloud_event["type"], cloud_event.data)
