"""`make traffic`: simulated ad clicks and customers sent to a running stack, so `make report` has
something to show. Seeded: the same seed draws the same conversions, payouts and customers.

Clicks: each click offers the five SIMULATED_OFFERS to /sample (the service's default Thompson
sampler chooses), converts with the chosen offer's rate and, when it does, /feedback reports a
lognormal payout around the offer's mean. Customers: /predict with a random customer, then
/rewards, accepted with a probability that depends on age band and region (ACCEPTANCE).

    python -m tools.traffic [--clicks 3000] [--customers 400] [--seed 15] [--url URL]
"""

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests

from shared.customer.segments import OFFERS, REGIONS, age_band
from shared.platform.namespace import DEFAULT_TENANT
from tools import target

# offer id: (conversion rate, mean payout in cents). Revenue per click 24, 45, 40, 30 and 20 cents:
# offer 102 is best, 103 close behind.
SIMULATED_OFFERS = {
    101: (0.06, 400.0),
    102: (0.03, 1500.0),
    103: (0.02, 2000.0),
    104: (0.01, 3000.0),
    105: (0.04, 500.0),
}
PAYOUT_SIGMA = 0.5  # spread of ln payouts
ACCEPTANCE = {"18-29": 0.35, "30-44": 0.25, "45-64": 0.18, "65+": 0.10}
REGION_FACTOR = {"Americas": 1.2, "Asia": 0.8, "Europa": 1.0}
WORKERS = 4  # concurrent requests: enough to be quick, gentle on a shared laptop


RETRIES = 5  # a 503 says "retry later" (Retry-After): a busy emulator gets the client a real one would


def _send(session: requests.Session, method: str, url: str, **kwargs) -> dict:
    """The answer's JSON, after retrying 503s as their Retry-After says (every call here is
    idempotent: a replayed click or reward event counts once)."""
    for _ in range(RETRIES):
        answer = session.request(method, url, timeout=30, **kwargs)
        if answer.status_code != 503:
            break
        time.sleep(min(float(answer.headers.get("Retry-After", 1)), 5.0))
        # the idle keep-alive connections may be closing by now (gunicorn's keepalive is 2 s)
        session.close()
    return _check(answer)


def _check(answer: requests.Response) -> dict:
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text[:300]}")
    return answer.json()


def send_clicks(url: str, clicks: int, seed: int, session: requests.Session) -> dict:
    """`clicks` clicks through /sample and, for conversions, /feedback; returns counts."""
    rng = np.random.default_rng([seed, 1])
    first_id = time.time_ns() // 1_000 % 2**52 * 1_000  # fresh ids per run: a replayed id counts nothing
    offer_ids = ",".join(map(str, SIMULATED_OFFERS))
    converts = rng.random(clicks)  # drawn up front so the outcome for click i is seeded whatever the order
    noise = rng.standard_normal(clicks)

    def one(i: int) -> float:
        click_id = first_id + i
        chosen = _send(session, "GET", f"{url}/sample/", params={"click_id": click_id, "offer_ids": offer_ids})
        rate, payout = SIMULATED_OFFERS[chosen["offer_id"]]
        if converts[i] >= rate:
            return 0.0
        reward = round(payout * float(np.exp(PAYOUT_SIGMA * noise[i] - PAYOUT_SIGMA**2 / 2)))
        _send(session, "PUT", f"{url}/feedback/", params={"click_id": click_id, "reward": reward})
        return reward

    with ThreadPoolExecutor(WORKERS) as pool:
        rewards = list(pool.map(one, range(clicks)))
    return {"clicks": clicks, "conversions": sum(r > 0 for r in rewards), "revenue": sum(rewards)}


def send_customers(url: str, customers: int, seed: int, session: requests.Session) -> dict:
    """`customers` customers through /predict and /rewards; returns counts."""
    rng = np.random.default_rng([seed, 2])
    today = time.strftime("%Y-%m-%d")
    people = [
        {
            "age": int(rng.integers(18, 90)),
            "gender": str(rng.choice(["F", "M"])),
            "region": str(rng.choice(REGIONS)),
            # Each offer eligible with probability 0.7, the first always (a customer with none is refused).
            "eligible": {
                offer: bool(flag) or offer == OFFERS[0]
                for offer, flag in zip(OFFERS, rng.random(len(OFFERS)) < 0.7, strict=True)
            },
            "draw": float(rng.random()),
        }
        for _ in range(customers)
    ]
    prefix = f"sim-{time.time_ns() // 1_000_000}"

    def one(i: int) -> bool:
        person = people[i]
        states = {key: person[key] for key in ("age", "gender", "region")}
        body = {"customer_id": f"{prefix}-{i}", "timestamp": today, "states": states, "offers": person["eligible"]}
        episode = _send(session, "POST", f"{url}/predict", json=body)
        accepted = person["draw"] < ACCEPTANCE[age_band(person["age"])] * REGION_FACTOR[person["region"]]
        reward = {
            "customer_id": body["customer_id"],
            "timestamp": today,
            "episode_id": episode["episode_id"],
            "accepted_one_of_the_three_offers": accepted,
        }
        _send(session, "PUT", f"{url}/rewards", json=reward)
        return accepted

    with ThreadPoolExecutor(WORKERS) as pool:
        accepted = list(pool.map(one, range(customers)))
    return {"customers": customers, "accepted": sum(accepted)}


def send(url: str, clicks: int, customers: int, seed: int, key: str | None = None) -> dict:
    """Send as the tenant whose API key is `key`."""
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=WORKERS, pool_maxsize=WORKERS)
        session.mount("http://", adapter)
        if key:
            session.headers["x-api-key"] = key
        return {**send_clicks(url, clicks, seed, session), **send_customers(url, customers, seed, session)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.traffic", description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--url", help="the stack's URL (default: the running `make run`'s)")
    parser.add_argument(
        "--tenant", default=DEFAULT_TENANT, help="send as this client (its key: the stack's state file)"
    )
    parser.add_argument("--key", help="the API key to send with (default: the tenant's, from the stack's state file)")
    args = parser.parse_args(argv)
    url, key = args.url, args.key
    if not url or not key:
        state = target.running_stack()
        if state is None:
            print("No running stack: start `make run` in another terminal first (or pass --url).", file=sys.stderr)
            return 1
        url = url or state["gateway"]
        key = key or state.get("api_keys", {}).get(args.tenant)
        if key is None:
            print(f"The running stack has no client {args.tenant!r}: see its state file.", file=sys.stderr)
            return 1
    started = time.monotonic()
    sent = send(url.rstrip("/"), args.clicks, args.customers, args.seed, key)
    took = time.monotonic() - started
    print(
        f"Sent to {url} in {took:.0f} s: {sent['clicks']} clicks, {sent['conversions']} conversions, revenue "
        f"{sent['revenue']:,.0f} cents; {sent['customers']} customers, {sent['accepted']} accepted. "
        f'Now: make report ARGS="--tenant {args.tenant}"'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
