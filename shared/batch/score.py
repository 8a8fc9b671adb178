"""The score task: one byte range of a batch file, parsed, checked against the client's rules and
scored, rows in chunks of CHUNK_ROWS (shared/batch/job.py says where it sits in a file's run).

Per chunk: parse every record (shared/batch/csv_io.py), draw the slates of the rows that share a
segment and an eligible list with one agent call (from the plan's frozen statistics, with a
generator seeded from the plan's seed, the range and the chunk: the same row always gets the same
slate), then append the chunk's result rows, its rejected rows (line numbers relative to the
range; the pack tasks make them absolute) and each row's pack entry, under the bucket of its
customer. Nothing is written to Firestore per row: at the end the task writes its three parts
(results, raw errors, spill) and then its record, `ranges/v{version}-{index}`, with its counts and
where it started and stopped in bytes. A task killed on the way is run again from the start of
its range and writes the same bytes.
"""

import collections
import csv
import datetime
import io
import time

import numpy as np

from shared.batch import status
from shared.batch.csv_io import Customer, RowParser, csv_bytes, read_layout, records_of, safe_cell
from shared.batch.lines import ByteLines, first_line_start
from shared.batch.rules import rules_from
from shared.customer import agents, packs, segments, snapshot

CHUNK_ROWS = 5000
READ_CHUNK_BYTES = 4 * 1024 * 1024


def score_range(ctx, index: int) -> dict:
    plan = ctx.plan
    last = index == plan.ranges - 1
    parser = RowParser(read_layout(plan.header), rules_from(plan.rules, plan.client))
    evidence = snapshot.evidence_of(plan.policy, plan.evidence)
    key = packs.file_key(plan.job_id)
    files, version = ctx.files, plan.version
    record_ref = status.task_ref(ctx.status_ref, status.RANGES, plan.version, index)
    results = files.writer(files.path(version, "results", index + 1))  # streamed as the chunks are scored
    out = _Output(plan.buckets, results)
    _report(ctx, record_ref, index, out, 0)
    with results, ctx.inbox_blob().open("rb", chunk_size=READ_CHUNK_BYTES) as stream:
        if index == 0:
            first = plan.header_end
        else:
            stream.seek(plan.bounds[index] - 1)
            first = first_line_start(stream, plan.bounds[index])
        stream.seek(first)
        lines = ByteLines(stream, first, None if last else plan.bounds[index + 1])
        chunk, number, reported = [], 0, time.monotonic()
        for line, cells in records_of(lines):
            chunk.append((lines.record_offset, line, cells))
            if len(chunk) == CHUNK_ROWS:
                _score_chunk(ctx, chunk, (plan.seed, index, number), parser, evidence, key, out)
                chunk, number = [], number + 1
                if time.monotonic() - reported >= status.PROGRESS_SECONDS:
                    reported = time.monotonic()
                    _report(ctx, record_ref, index, out, lines.offset - first)
        _score_chunk(ctx, chunk, (plan.seed, index, number), parser, evidence, key, out)
    if out.errors:
        files.put(files.path(version, "errors-raw", index), csv_bytes(out.errors))
    files.put_spill(files.path(version, "spill", index), out.spill)
    record = {
        "version": version,
        "index": index,
        "state": "done",
        "rows_read": out.rows_read,
        "rows_scored": out.rows_scored,
        "rejected_rows": len(out.errors),
        "lines": lines.number,
        "first": first,  # where the range's first record started
        "end": lines.offset,  # where the next range's first record must start
        "bytes": lines.offset - first,
        "attempt": ctx.attempt,
        "peak_mib": status.peak_mib(),
        "at": status.now(),
    }
    record_ref.set(record)
    return record


class _Output:
    def __init__(self, buckets: int, results):
        self.results = results  # the results part's writer
        self.errors: list[list] = []
        self.spill: list[list[bytes]] = [[] for _ in range(buckets)]
        self.rows_read = 0
        self.rows_scored = 0
        self._names: dict[str, str] | None = None

    def product_names(self, names: dict) -> dict[str, str]:
        if self._names is None:
            self._names = {offer: safe_cell(name or "") for offer, name in names.items()}
        return self._names


def _score_chunk(ctx, chunk: list, seed: tuple, parser: RowParser, evidence, key: str, out: _Output) -> None:
    """Rows that share a segment and an eligible list share the agent's inputs: one agent call per
    group (priors computed once, one draw per row); the linear agents score each row's customer."""
    if not chunk:
        return
    plan = ctx.plan
    scored = []
    for row, line, cells in chunk:
        parsed = parser.parse(line, cells)
        if isinstance(parsed, Customer):
            scored.append((row, parsed, segments.segment_of(parsed.age, parsed.gender, parsed.region)))
        else:
            out.errors.append([parsed.line, parsed.customer_id, parsed.reason])
    out.rows_read += len(chunk)
    out.rows_scored += len(scored)
    groups: dict[tuple, list[int]] = collections.defaultdict(list)
    for position, (_, customer, segment) in enumerate(scored):
        groups[(segment, tuple(customer.eligible))].append(position)
    rng = np.random.default_rng(list(seed))
    slates: list[list[str]] = [[] for _ in scored]
    for (segment, eligible), positions in groups.items():
        customers = [scored[p][1] for p in positions]
        drawn = agents.slates(plan.policy, segment, eligible, evidence(segment), rng, len(positions), customers)
        for position, slate in zip(positions, drawn, strict=True):
            slates[position] = slate
    rows = []
    names = out.product_names(plan.names)
    for (row, customer, segment), slate in zip(scored, slates, strict=True):
        bucket = packs.bucket_of(customer.customer_id, plan.buckets)
        timestamp = customer.timestamp or plan.response_date
        entry = packs.entry_line(row, customer.customer_id, timestamp, segment, slate, customer.states)
        out.spill[bucket].append(entry)
        padded = slate + [""] * (segments.SLATE_SIZE - len(slate))
        rows.append(
            [
                safe_cell(customer.customer_id),
                *padded,
                *(names.get(offer, "") for offer in padded),
                packs.episode_id(key, bucket, row),
                plan.response_date,
            ]
        )
    # Only the client's text can start a formula: offers, episode ids and dates never do (csv_io.safe_cell).
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    out.results.write(buffer.getvalue().encode("utf-8"))


def _report(ctx, record_ref, index: int, out: _Output, done_bytes: int) -> None:
    plan = ctx.plan
    record_ref.set(
        {
            "version": plan.version,
            "index": index,
            "state": "running",
            "rows_read": out.rows_read,
            "bytes": done_bytes,
            "attempt": ctx.attempt,
            "at": status.now(),
        }
    )
    ctx.heartbeat()
    if not done_bytes:  # the range's start: its record says it runs, the file's progress has not moved
        return
    started = datetime.datetime.fromisoformat(plan.created_at)
    status.refresh_progress(ctx.status_ref, plan.version, plan.ranges, plan.size - plan.header_end, started)
