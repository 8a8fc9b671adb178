"""What two storage choices of the code cost, printed (python -m bench.document_costs):

- episodes with `states` as a map and the eligible offers as an array, against both as text (as
  shared/customer/store.py's new_episode stores them): episodes created per second through the
  batch writer (shared/batch/writer.py, unthrottled) in a fresh Firestore emulator, which indexes
  every map field and array element;
- a shard document's fields read with the SDK's to_dict() (a deep copy) against in place
  (shared/platform/sdk_private.py's snapshot_fields, as the counters sum shards): microseconds a
  document, in a tight loop.

Figures vary with the machine and what else runs on it: docs/data-model.md quotes one run.
"""

import argparse
import json
import os
import timeit

from bench import batch_throughput
from devstack import emulators

PROJECT = "offer-bandits-bench"


def episode_rate(episodes: int, as_text: bool) -> float:
    """Episodes created per second, `states` and eligible offers as text or as a map and an array."""
    episode = batch_throughput.sample_episode()
    if not as_text:
        episode |= {"states": json.loads(episode["states"]), "eligible_offers": episode["eligible_offers"].split(",")}
    return batch_throughput.ceiling(episodes, 1000, episode)


def snapshot_read_cost(repeats: int = 20_000) -> tuple[float, float]:
    """Microseconds to read one shard snapshot's fields with to_dict() and in place."""
    from google.cloud import firestore

    from shared.platform import sdk_private

    db = firestore.Client(project=PROJECT)
    reference = db.document("cpa_offers/42/shards/0")
    fields = {"c": {"clicks": 12, "conversions": 3, "reward": 900.0, "reward_sq": 270000.0, "log_reward": 17.1}}
    snapshot = firestore.DocumentSnapshot(reference, fields, True, None, None, None)
    copied = timeit.timeit(snapshot.to_dict, number=repeats) / repeats
    in_place = timeit.timeit(lambda: sdk_private.snapshot_fields(snapshot), number=repeats) / repeats
    return copied * 1e6, in_place * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=10_000, help="episodes written in each encoding")
    args = parser.parse_args()
    emulator = emulators.start_firestore()
    try:
        os.environ.update(emulator.env, GOOGLE_CLOUD_PROJECT=PROJECT)
        episode_rate(1000, as_text=True)  # warm the emulator and the client
        for as_text in (False, True):
            rate = episode_rate(args.episodes, as_text)
            encoding = (
                "states and eligible offers as text" if as_text else "states as a map, eligible offers as an array"
            )
            print(f"episodes, {encoding}: {rate:,.0f} created/s ({args.episodes:,} through the batch writer)")
        copied, in_place = snapshot_read_cost()
        print(f"a shard snapshot's fields: to_dict() {copied:.1f} us, in place {in_place:.2f} us a document")
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
