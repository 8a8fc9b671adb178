"""A batch file's working objects in the results bucket, under `_parts/{job id}/v{plan version}/`:
the plan, each score task's results part, raw errors part (line numbers relative to its range)
and spill (its rows' pack entries, grouped by bucket), and each pack task's errors part (line
numbers made absolute). At the end the parts are composed into `<client>/<stem>.results.csv` (and
`.errors.csv` when a row was rejected) and the whole prefix is deleted.

GCS has no append; compose works on real GCS and gcp-storage-emulator and takes at most
COMPOSE_LIMIT sources, so parts are folded level by level. Every part is written whole by one
task attempt (a retried task writes the same bytes again), so a part is never half there.

A spill starts with (buckets + 1) offsets, 8 bytes each, big-endian: bucket b's entries are the
bytes [offsets[b], offsets[b + 1]) of what follows. A pack task reads the offsets of its buckets
and then their entries, two ranged reads per spill.
"""

import struct

from google.api_core import exceptions
from google.cloud import storage

COMPOSE_LIMIT = 32  # sources per GCS compose request
WRITE_CHUNK_BYTES = 2 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
_OFFSET = struct.Struct(">Q")


class JobFiles:
    def __init__(self, gcs: storage.Client, results: storage.Bucket, job_id: str, source: str):
        self.gcs = gcs
        self.results = results
        self.root = f"_parts/{job_id}"
        self.source = source  # recorded in the outputs' metadata

    def path(self, version: int, kind: str, number: int | None = None) -> str:
        return f"{self.root}/v{version}/{kind}" + ("" if number is None else f"/{number:07d}")

    def put(self, name: str, data: bytes, content_type: str = "text/csv", create_only: bool = False) -> bool:
        """Write an object; with create_only, False when it exists already (and it is left as it is)."""
        try:
            self.results.blob(name).upload_from_string(
                data, content_type=content_type, if_generation_match=0 if create_only else None
            )
        except exceptions.PreconditionFailed:
            return False
        return True

    def writer(self, name: str, content_type: str = "text/csv"):
        """A file object that uploads what is written to it, a few MiB at a time (a resumable upload):
        the object appears, whole, only when it is closed; a writer that dies leaves nothing."""
        blob = self.results.blob(name)
        blob.content_type = content_type
        return blob.open("wb", chunk_size=WRITE_CHUNK_BYTES, ignore_flush=True)

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes | None:
        """An object's bytes [start, end) (all of it without them); None when it does not exist."""
        try:
            return self.results.blob(name).download_as_bytes(start=start, end=None if end is None else end - 1)
        except exceptions.NotFound:
            return None

    # -- spills ---------------------------------------------------------------------------------
    def put_spill(self, name: str, buckets: list[list[bytes]]) -> None:
        offsets, position = [], 0
        for entries in buckets:
            offsets.append(position)
            position += sum(len(entry) for entry in entries)
        offsets.append(position)
        with self.writer(name, "application/octet-stream") as out:  # streamed: never a second copy
            out.write(b"".join(_OFFSET.pack(offset) for offset in offsets))
            for entries in buckets:
                for entry in entries:
                    out.write(entry)

    def spill_buckets(self, name: str, first: int, last: int, total: int) -> list[bytes]:
        """The entries of buckets first..last-1 from a spill of `total` buckets."""
        if first >= last:
            return []
        head = self.get(name, _OFFSET.size * first, _OFFSET.size * (last + 1))
        offsets = [_OFFSET.unpack_from(head, k * _OFFSET.size)[0] for k in range(last - first + 1)]
        base = _OFFSET.size * (total + 1)
        data = self.get(name, base + offsets[0], base + offsets[-1]) if offsets[-1] > offsets[0] else b""
        return [data[offsets[k] - offsets[0] : offsets[k + 1] - offsets[0]] for k in range(last - first)]

    # -- the outputs ----------------------------------------------------------------------------
    def compose(self, names: list[str], destination: str) -> str:
        sources = [self.results.blob(name) for name in names]
        level = 0
        while len(sources) > COMPOSE_LIMIT:  # compose takes at most 32 sources: fold level by level
            groups = [sources[i : i + COMPOSE_LIMIT] for i in range(0, len(sources), COMPOSE_LIMIT)]
            sources = [
                self._compose_into(f"{self.root}/fold/{destination.replace('/', '_')}-{level}-{n:05d}", group)
                for n, group in enumerate(groups)
            ]
            level += 1
        self._compose_into(destination, sources)
        return destination

    def _compose_into(self, name: str, sources: list) -> storage.Blob:
        blob = self.results.blob(name)
        blob.content_type = "text/csv; charset=utf-8"
        blob.metadata = {"source": self.source}
        blob.compose(sources)
        return blob

    def existing(self, prefix: str) -> list[str]:
        return sorted(blob.name for blob in self.gcs.list_blobs(self.results, prefix=prefix))

    def delete(self) -> None:
        blobs = list(self.gcs.list_blobs(self.results, prefix=f"{self.root}/"))
        self.results.delete_blobs(blobs, on_error=lambda _: None)
