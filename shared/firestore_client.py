"""The process-wide Firestore client: the emulator when FIRESTORE_EMULATOR_HOST is set."""

import functools
import os

from google.cloud import firestore

LOCAL_PROJECT = "offer-bandits-local"
MAX_COMMIT_WRITES = 500  # Firestore takes at most 500 writes in one commit


@functools.cache
def get_db() -> firestore.Client:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or LOCAL_PROJECT
    database = os.environ.get("FIRESTORE_DATABASE", "(default)")
    return firestore.Client(project=project, database=database)
