"""The error a client sees: a 4xx (or 503) status, a message, and the field at fault."""


class ApiError(Exception):
    """A client-visible error: the status, a message, and the field at fault when there is one."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body
