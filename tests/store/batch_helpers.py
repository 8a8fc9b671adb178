"""Shared by the batch tests: uploads, deliveries through the deployed CloudEvent app, and reading
back a file's status, outputs and packed episodes."""

import csv
import io
import pathlib

import functions_framework

from devstack.bridge import storage_event
from shared.batch import job as batch_job
from shared.customer import packs
from shared.platform.namespace import ROOT, Namespace

ROOT_DIR = pathlib.Path(__file__).resolve().parents[2]
APP = functions_framework.create_app("score_upload", str(ROOT_DIR / "functions" / "main.py"), "cloudevent")
HEADER = "customer_id,timestamp,age,gender,client-since,region,last_offer," + ",".join(
    f"OFFER_{n}" for n in range(1, 11)
)
UNTHROTTLED = {"BATCH_INITIAL_OPS_PER_SECOND": "100000", "BATCH_MAX_OPS_PER_SECOND": "100000"}


def upload(buckets, name: str, data: bytes):
    blob = buckets["inbox"].blob(name)
    blob.upload_from_string(data, content_type="text/csv")
    blob.reload()
    return blob


def deliver(blob, event_id: str | None = None):
    headers, data = storage_event(blob, event_id)
    return APP.test_client().post("/", headers=headers, json=data)


def read_csv(bucket, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(bucket.blob(name).download_as_text())))


def status_ref(db, blob, space: Namespace = ROOT):
    upload_ = batch_job.Upload(blob.bucket.name, blob.name, str(blob.generation))
    return db.collection(space.path(batch_job.JOBS)).document(upload_.job_id)


def status_of(db, blob, space: Namespace = ROOT) -> dict:
    snapshot = status_ref(db, blob, space).get()
    return snapshot.to_dict() if snapshot.exists else {}


def generated(rows: int, start: int = 0) -> bytes:
    regions, genders = ("Europa", "Asia", "Americas"), ("F", "M")
    lines = [HEADER] + [
        f"{100000 + i},2022-04-{1 + i % 28:02d},{18 + i * 7 % 70},{genders[i % 2]},2015-01-01,{regions[i % 3]},OFFER_2,"
        + ",".join(["True"] * 10)
        for i in range(start, start + rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def pack_documents(db, space: Namespace = ROOT) -> dict[str, dict]:
    return {snapshot.id: snapshot.to_dict() for snapshot in db.collection(space.path(packs.PACKS)).stream()}


def batch_episodes(db, space: Namespace = ROOT) -> dict[str, packs.PackedEpisode]:
    """Every packed episode of the namespace, by episode id."""
    found = {}
    for document in pack_documents(db, space).values():
        key = packs.file_key(document["job"])
        for episode in packs._entries(document, key, document["bucket"]):
            assert episode.episode_id not in found, f"episode {episode.episode_id} packed twice"
            found[episode.episode_id] = episode
    return found
