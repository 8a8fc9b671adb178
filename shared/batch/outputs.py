"""A batch file's outputs in the results bucket: part objects written chunk by chunk, composed at the
end into `<client>/<stem>.results.csv` (and `.errors.csv`). GCS has no append; compose works on real
GCS and gcp-storage-emulator, and takes at most COMPOSE_LIMIT sources, so parts are folded level by
level."""

from google.cloud import storage

COMPOSE_LIMIT = 32  # sources per GCS compose request


class Parts:
    def __init__(self, gcs: storage.Client, results: storage.Bucket, job_id: str, source: str):
        self.gcs = gcs
        self.results = results
        self.prefix = f"_parts/{job_id}"
        self.source = source  # recorded in the outputs' metadata

    def put(self, kind: str, number: int, data: bytes) -> None:
        self.results.blob(f"{self.prefix}/{kind}/{number:07d}.csv").upload_from_string(data, content_type="text/csv")

    def compose(self, kind: str, destination: str) -> str:
        sources = sorted(self.gcs.list_blobs(self.results, prefix=f"{self.prefix}/{kind}/"), key=lambda b: b.name)
        level = 0
        while len(sources) > COMPOSE_LIMIT:  # compose takes at most 32 sources: fold level by level
            groups = [sources[i : i + COMPOSE_LIMIT] for i in range(0, len(sources), COMPOSE_LIMIT)]
            sources = [
                self._compose_into(f"{self.prefix}/fold/{kind}-{level}-{n:05d}.csv", group)
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

    def delete(self) -> None:
        self.results.delete_blobs(
            list(self.gcs.list_blobs(self.results, prefix=f"{self.prefix}/")), on_error=lambda _: None
        )
