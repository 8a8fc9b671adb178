"""One JSON object per stdout line, with `severity`, as Cloud Logging reads it."""
import json
import logging
import sys
import time


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "logger": record.name,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (the runtime or a test may replace it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def _configure() -> logging.Logger:
    logger = logging.getLogger("offer_bandits")
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(CloudLoggingFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


logger = _configure()


def log(severity: str, message: str, exc_info: bool = False, **fields) -> None:
    fields = {name: value for name, value in fields.items() if value is not None}
    logger.log(logging.getLevelName(severity), message, exc_info=exc_info, extra={"fields": fields})
