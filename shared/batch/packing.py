"""The pack task and the end of a file (shared/batch/job.py says where they sit in a file's run).

A pack task takes a contiguous slice of the file's buckets: from every score task's spill it reads
the entries of those buckets (two ranged reads per spill), joins each bucket's entries in file
order and creates its pack (shared/customer/packs.py) through BulkWriter, create-only: a pack left
by a killed attempt holds the same bytes and is kept. It also rewrites the raw errors parts of some
ranges with absolute line numbers (the line counts of the ranges before them are known now). Then
it records itself, `groups/v{version}-{index}`.

`finish` composes the results and errors parts into the client's CSVs, lists the file among the
tenant's recent files (a reward without episode_id looks there), marks the file done with its
counts and deletes the working objects. Every step can be run again: compose writes the same
output, the listing replaces itself, a finished file is left as it is.
"""

import concurrent.futures
import csv
import datetime
import io
import re

from shared.batch import status
from shared.batch.csv_io import ERROR_HEADER, MAX_LINE_CHARS, RESULT_HEADER, csv_bytes
from shared.batch.plan import output_paths
from shared.batch.writer import Ramp, create_new
from shared.customer import packs
from shared.platform.log import log

READ_THREADS = 8
_OVERLONG = re.compile(rf"^line (\d+) is longer than {MAX_LINE_CHARS} characters$")


def bucket_slice(buckets: int, groups: int, index: int) -> tuple[int, int]:
    return buckets * index // groups, buckets * (index + 1) // groups


def line_bases(plan, ranges: list[dict]) -> list[int]:
    """The absolute line number before each range's first line."""
    bases, seen = [], plan.header_lines
    for task in ranges:
        bases.append(seen)
        seen += task["lines"]
    return bases


def pack_group(ctx, index: int, ranges: list[dict]) -> dict:
    plan, files = ctx.plan, ctx.files
    first, last = bucket_slice(plan.buckets, plan.groups, index)
    spills = [files.path(plan.version, "spill", task["index"]) for task in ranges]
    with concurrent.futures.ThreadPoolExecutor(READ_THREADS) as pool:
        parts = list(pool.map(lambda name: files.spill_buckets(name, first, last, plan.buckets), spills))
    pack_file = plan.pack_file()
    documents = {}
    for offset in range(last - first):
        entries = b"".join(part[offset] for part in parts)
        if entries:
            documents.update(packs.pack_documents(pack_file, first + offset, entries))
    base = Ramp.from_env()
    ramp = Ramp(max(1, base.initial // plan.groups), max(1, base.maximum // plan.groups))
    kept = create_new(ctx.db, ctx.space.path(packs.PACKS), documents, ramp) if documents else set()
    bases = line_bases(plan, ranges)
    for task in ranges[index :: plan.groups]:
        if task["rejected_rows"]:
            raw = files.get(files.path(plan.version, "errors-raw", task["index"])) or b""
            files.put(files.path(plan.version, "errors", task["index"] + 1), _absolute(raw, bases[task["index"]]))
    record = {
        "version": plan.version,
        "index": index,
        "state": "done",
        "packs": len(documents),
        "packs_kept": len(kept),
        "attempt": ctx.attempt,
        "peak_mib": status.peak_mib(),
        "at": status.now(),
    }
    status.task_ref(ctx.status_ref, status.GROUPS, plan.version, index).set(record)
    return record


def _absolute(raw: bytes, base: int) -> bytes:
    rows = []
    for line, customer_id, reason in csv.reader(io.StringIO(raw.decode("utf-8"))):
        overlong = _OVERLONG.match(reason)
        if overlong:
            reason = f"line {int(overlong[1]) + base} is longer than {MAX_LINE_CHARS} characters"
        rows.append([int(line) + base, customer_id, reason])
    return csv_bytes(rows)


def finish(ctx, ranges: list[dict]) -> dict:
    plan, files = ctx.plan, ctx.files
    results_path, errors_path = output_paths(plan.name)
    totals = {
        "rows_read": sum(task["rows_read"] for task in ranges),
        "rows_scored": sum(task["rows_scored"] for task in ranges),
        "rejected_rows": sum(task["rejected_rows"] for task in ranges),
    }
    files.put(files.path(plan.version, "results", 0), csv_bytes([], RESULT_HEADER))
    results = files.compose([files.path(plan.version, "results", n) for n in range(plan.ranges + 1)], results_path)
    errors = None
    if totals["rejected_rows"]:
        files.put(files.path(plan.version, "errors", 0), csv_bytes([], ERROR_HEADER))
        names = [files.path(plan.version, "errors", 0)] + [
            files.path(plan.version, "errors", task["index"] + 1) for task in ranges if task["rejected_rows"]
        ]
        errors = files.compose(names, errors_path)
    keep_since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ctx.reward_window)
    packs.publish(ctx.db, plan.pack_file(), keep_since, ctx.space)
    bucket = files.results.name
    final = {
        "state": "done",
        **totals,
        "results_path": f"gs://{bucket}/{results}",
        "errors_path": f"gs://{bucket}/{errors}" if errors else None,
        "packs": plan.buckets,
        "progress": {
            "phase": "done",
            "rows_done": totals["rows_read"],
            "rows_total": totals["rows_read"],
            "eta_seconds": 0,
            "at": status.now(),
        },
        "finished_at": status.now(),
        "lease_expires": status.now(),
    }
    status.update(ctx.status_ref, final)
    log(
        "INFO",
        "batch file done",
        job=plan.job_id,
        name=plan.name,
        tenant=plan.tenant,
        rows_read=totals["rows_read"],
        rows_scored=totals["rows_scored"],
        rejected_rows=totals["rejected_rows"],
    )
    files.delete()
    return final
