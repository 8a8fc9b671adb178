"""Cloud Functions entry points. Each is deployed as its own function from this one source tree.

Deployed, this file is the source archive's main.py, beside the `shared` package (infra/source.tf).

A request's path: the entry point here parses it into a model (shared/<product>/models.py), the
store (shared/<product>/store.py) reads and writes Firestore and asks a pure policy
(shared/cpa/policies/, shared/customer/agents/) what to do; the JSON answer is built here.
"""

import datetime
import os
import re
import zlib

import functions_framework
import numpy as np

from shared import admin
from shared.batch import job as batch_job
from shared.cpa import insights
from shared.cpa.models import CompareRequest, FeedbackRequest, SampleRequest, parse_id
from shared.cpa.policies import OfferStats
from shared.cpa.records import Click
from shared.cpa.store import CpaStore
from shared.customer import agents, segments
from shared.customer.models import PredictRequest, RewardRequest
from shared.customer.records import Episode
from shared.customer.store import CustomerStore
from shared.platform import allocator
from shared.platform.firestore import get_db, get_request_db
from shared.platform.namespace import DEFAULT_TENANT, Namespace
from shared.web.http import ApiError, endpoint, json_body, log_fields, query_and_body, tenant
from shared.web.identity import token_claims

_STATS_PATH = re.compile(r"^/offer_ids/([^/]+)/stats/?$")
_COMPARE_PATH = re.compile(r"^/offers/compare/?$")
# Intervals and P(best) are Monte Carlo (shared/cpa/insights.py): a fixed seed gives the same
# counters the same answer, call after call.
_INSIGHTS_SEED = 0

allocator.keep_freed_memory_mapped()


_rngs: dict[str, np.random.Generator] = {}


def rng_of(space: Namespace) -> np.random.Generator:
    """The tenant's own generator: one tenant's traffic never shifts another's draws. DECISION_SEED
    seeds them (tests and benchmarks replay the same decisions); unset, fresh entropy."""
    if space.tenant not in _rngs:
        seed = os.environ.get("DECISION_SEED")
        entropy = [int(seed), zlib.crc32(space.tenant.encode())] if seed else None
        _rngs.setdefault(space.tenant, np.random.default_rng(entropy))
    return _rngs[space.tenant]


def cpa_store(request) -> CpaStore:
    space = tenant(request)
    return CpaStore(get_request_db(), rng_of(space), space=space)


def sample_degraded(request):
    """Firestore unreachable and DEGRADED_MODE on: a uniformly random candidate, not recorded
    (feedback for this click id is a 404: the click was never sampled)."""
    sample_request = SampleRequest.model_validate(query_and_body(request))
    offers = sample_request.offer_ids
    offer = offers[int(rng_of(tenant(request)).integers(len(offers)))]
    click = Click(sample_request.click_id, offer, "random", 1 / len(offers), "degraded:random")
    log_fields(request, sampler=click.sampler, offer_id=click.offer_id, served_by=click.served_by)
    return _click_answer(click, recorded=False), 200


@functions_framework.http
@endpoint("GET", degraded=sample_degraded, identified=True)
def sample(request):
    sample_request = SampleRequest.model_validate(query_and_body(request))
    store = cpa_store(request)
    click = store.sample(sample_request)
    log_fields(request, sampler=click.sampler, offer_id=click.offer_id, served_by=click.served_by)
    log_fields(request, **_context_fields(sample_request, click))
    # the holdout's split, for the sample-ratio-mismatch alert (infra/analytics.tf)
    log_fields(request, holdout=click.holdout, holdout_share=store.holdout_share(click))
    return _click_answer(click, recorded=True), 200


def _context_fields(sample_request: SampleRequest, click: Click) -> dict:
    """The click's context and pacing for the request's log line (off-policy evaluation reads them)."""
    click_context = sample_request.context()
    fields = {"context": click_context} if click_context else {}
    return fields | ({"paced": click.paced} if click.paced is not None else {})


def _click_answer(click: Click, recorded: bool) -> dict:
    answer = {
        "click_id": click.click_id,
        "offer_id": click.offer_id,
        "sampler": click.sampler,
        "probability": click.probability,
        "recorded": recorded,
        "served_by": click.served_by,
    }
    if click.paced is not None:  # a capped candidate (shared/cpa/caps.py): did pacing change the choice?
        answer["paced"] = click.paced
    return answer


@functions_framework.http
@endpoint("PUT", identified=True)
def feedback(request):
    fed = cpa_store(request).feedback(FeedbackRequest.model_validate(query_and_body(request)))
    log_fields(request, offer_id=fed.offer_id, reward=fed.reward, is_conversion=fed.is_conversion)
    return {
        "click_id": fed.click_id,
        "offer_id": fed.offer_id,
        "is_conversion": fed.is_conversion,
        "reward": fed.reward,
        "event_id": fed.event_id,
        "late": fed.late,
    }, 200


@functions_framework.http
@endpoint("GET", identified=True)
def stats(request):
    """/offer_ids/{id}/stats (one offer's totals) and /offers/compare (which offer is winning)."""
    if _COMPARE_PATH.match(request.path):
        return compare(request)
    match = _STATS_PATH.match(request.path)
    raw_id = match.group(1) if match else request.args.get("offer_id")
    if raw_id is None:
        raise ApiError(404, "use /offer_ids/<offer_id>/stats/", "offer_id")
    try:
        offer_id = parse_id(raw_id)
    except ValueError as error:
        raise ApiError(400, f"offer_id: {error}", "offer_id") from None
    store = cpa_store(request)
    totals = store.offer_stats(offer_id)
    found = insights.revenue_per_click([totals], np.random.default_rng(_INSIGHTS_SEED))
    return _offer_answer(offer_id, totals, found, 0) | _cap_answer(store.cap_status(offer_id)), 200


def _cap_answer(cap: dict | None) -> dict:
    """A capped offer's cap and today's spend against it (shared/cpa/caps.py); nothing otherwise."""
    return {"cap": cap} if cap is not None else {}


def compare(request):
    offer_ids = CompareRequest.model_validate(query_and_body(request)).offer_ids
    totals = cpa_store(request).offers_stats(offer_ids)
    found = insights.revenue_per_click(totals, np.random.default_rng(_INSIGHTS_SEED))
    offers = [
        _offer_answer(offer, stats, found, i) | {"p_best": round(float(found.p_best[i]), 4)}
        for i, (offer, stats) in enumerate(zip(offer_ids, totals, strict=True))
    ]
    return {
        "offers": offers,
        "best": offer_ids[int(np.argmax(found.p_best))],
        "payout_known": found.payout_known,
        "level": found.level,
    }, 200


def _offer_answer(offer_id: int, totals: OfferStats, found: insights.Insights, index: int) -> dict:
    """An offer's exact totals, with the 95 % interval on its revenue per click (cents); the
    interval is null while the payout is unknown (no conversion among the offers looked at)."""
    clicks = totals.clicks
    known = found.payout_known
    return {
        "offer_id": offer_id,
        "clicks": clicks,
        "conversions": totals.conversions,
        "reward": totals.reward,
        "cr": totals.conversions / clicks if clicks else 0.0,
        "rpc": totals.reward / clicks if clicks else 0.0,
        "rpc_low": round(float(found.low[index]), 4) if known else None,
        "rpc_high": round(float(found.high[index]), 4) if known else None,
    }


# -- Customer offers (Company A) -----------------------------------------------------------------
_agent_registered: set[str] = set()  # tenants whose TB_AGENTS entry this instance has made sure of


def customer_store(request) -> CustomerStore:
    space = tenant(request)
    policy = os.environ.get("AGENT_POLICY", agents.DEFAULT_AGENT)
    store = CustomerStore(get_request_db(), rng_of(space), policy, space=space)
    if space.tenant not in _agent_registered:
        store.ensure_agent_registered()
        _agent_registered.add(space.tenant)
    return store


def _prediction(request) -> tuple[CustomerStore, PredictRequest, Episode]:
    store = customer_store(request)
    predict_request = PredictRequest.model_validate(json_body(request, required=True))
    episode = store.predict(predict_request)
    log_fields(request, policy=episode.policy, served_by=episode.served_by)
    log_fields(request, holdout=episode.holdout, holdout_share=store.holdout_share())
    return store, predict_request, episode


def _prediction_answer(predict_request: PredictRequest, episode: Episode, offers) -> dict:
    return {
        "customer_id": predict_request.customer_id,
        "response-date": datetime.date.today().isoformat(),
        "best-three-offers": offers,
        "episode_id": episode.episode_id,
        "policy": episode.policy,
        "agent-version": episode.agent_version,
        "recorded": episode.episode_id is not None,
        "served_by": episode.served_by,
    }


def _static_prediction(request) -> tuple[PredictRequest, Episode]:
    """Firestore unreachable and DEGRADED_MODE on: the static agent's slate, no episode recorded
    (so no episode id, and nothing to reward)."""
    predict_request = PredictRequest.model_validate(json_body(request, required=True))
    states = predict_request.states
    segment = segments.segment_of(states.age, states.gender, states.region)
    slate = agents.slates(agents.STATIC, segment, predict_request.eligible, {}, rng_of(tenant(request)))[0]
    static = agents.STATIC
    episode = Episode(None, predict_request.customer_id, slate, static, agents.version_of(static), f"degraded:{static}")
    log_fields(request, policy=episode.policy, served_by=episode.served_by)
    return predict_request, episode


def predict_degraded(request):
    predict_request, episode = _static_prediction(request)
    return _prediction_answer(predict_request, episode, episode.slate), 200


def predict_v2_degraded(request):
    predict_request, episode = _static_prediction(request)
    answer = _prediction_answer(predict_request, episode, dict.fromkeys(episode.slate))
    answer["missing-product-names"] = episode.slate  # product names live in Firestore too
    return answer, 200


@functions_framework.http
@endpoint("GET", identified=True)
def is_alive(request):
    serving = customer_store(request).serving_agent()
    answer = {"status": "I'm alive and running", "agent-version": f"{serving.version}-API", "policy": serving.policy}
    if serving.served_by != serving.policy:  # the kill switch forces this agent
        answer["served_by"] = serving.served_by
    return answer, 200


@functions_framework.http
@endpoint("POST", degraded=predict_degraded, identified=True)
def predict(request):
    _, predict_request, episode = _prediction(request)
    return _prediction_answer(predict_request, episode, episode.slate), 200


@functions_framework.http
@endpoint("POST", degraded=predict_v2_degraded, identified=True)
def predict_v2(request):
    store, predict_request, episode = _prediction(request)
    names = store.product_names(episode.slate)
    answer = _prediction_answer(predict_request, episode, names)
    missing = [offer for offer in episode.slate if names[offer] is None]
    if missing:
        answer["missing-product-names"] = missing
    return answer, 200


@functions_framework.http
@endpoint("PUT", identified=True)
def rewards(request):
    outcome = customer_store(request).reward(RewardRequest.model_validate(json_body(request, required=True)))
    log_fields(request, policy=outcome.policy, accepted=outcome.accepted)
    return {
        "customer_id": outcome.customer_id,
        "episode_id": outcome.episode_id,
        "accepted_one_of_the_three_offers": outcome.accepted,
        "accepted_offer": outcome.accepted_offer,
        "offers": outcome.slate,
        "late": outcome.late,
        "status": "recorded",
    }, 200


# -- Batch scoring of client CSVs (Company B) ----------------------------------------------------
@functions_framework.cloud_event
def score_upload(cloud_event):
    """A file finalized in the inbox bucket: score it into the results bucket (shared/batch/job.py)."""
    batch_job.handle(cloud_event["id"], cloud_event["type"], cloud_event.data)


# -- Admin (never routed by the gateway) ---------------------------------------------------------
def admin_identity(request) -> str:
    """Who called: the `email` claim of the Google ID token in `Authorization: Bearer`. Cloud Run
    verifies that token's signature and audience, and the caller's run.invoker role (granted to
    var.admin_members only, infra/admin.tf), before the request reaches this code; a request
    without one never gets here when deployed. Locally `make reset` passes --who instead."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "an identity token is required (Authorization: Bearer)", "Authorization")
    try:
        claims = token_claims(header.removeprefix("Bearer ").strip())
    except ValueError as error:
        raise ApiError(401, f"Authorization: {error}", "Authorization") from None
    return claims.get("email") or claims.get("sub") or "unknown"


@functions_framework.http
@endpoint("POST")
def admin_reset(request):
    """Archive then zero one offer's or one segment's statistics of one tenant (shared/admin.py):
    POST {"offer": 42} or {"segment": "30-44|Europa|M"}, optional "tenant" (default: default) and
    "reason". Operators only: the platform checks their identity token."""
    fields = query_and_body(request)
    who = admin_identity(request)
    targets = [name for name in ("offer", "segment") if fields.get(name) not in (None, "")]
    if len(targets) != 1:
        raise ApiError(400, "name exactly one of offer or segment", "offer")
    kind = targets[0]
    try:
        space = Namespace(str(fields.get("tenant") or DEFAULT_TENANT))
    except ValueError as error:
        raise ApiError(400, f"tenant: {error}", "tenant") from None
    try:
        path = admin.counter_of(kind, str(fields[kind]), space)
    except ValueError as error:
        raise ApiError(400, f"{kind}: {error}", kind) from None
    reason = str(fields.get("reason") or "")[:500]
    archive = admin.reset(get_db(), kind, str(fields[kind]), who, reason, space)
    log_fields(request, reset_counter=path, reset_by=who, archive=archive.id)
    return {
        "archive_id": archive.id,
        "counter": path,
        "who": who,
        "archived": archive.totals,
        "shards_moved": archive.shards_moved,
        "status": archive.status,
    }, 200
