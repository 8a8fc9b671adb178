"""One JSON object per stdout line, with `severity`, as Cloud Logging reads it.

Written straight to stdout rather than through the logging module: every request logs a line,
and the logging machinery (caller lookup, records, handlers) costs more than the line itself.
"""

import json
import sys
import threading
import time
import traceback

_write_lock = threading.Lock()  # one whole line at a time from the server's threads


def log(severity: str, message: str, exc_info: bool = False, **fields) -> None:
    now = time.time()
    entry = {
        "severity": severity,
        "message": message,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
        "logger": "offer_bandits",
        **{name: value for name, value in fields.items() if value is not None},
    }
    if exc_info:
        entry["exception"] = traceback.format_exc()
    line = json.dumps(entry, default=str) + "\n"
    with _write_lock:
        sys.stdout.write(line)  # whatever sys.stdout is now: the runtime or a test may replace it
        sys.stdout.flush()
