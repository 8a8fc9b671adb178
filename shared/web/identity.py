"""Who is calling: the tenant a request is made as, from the API key the gateway verified, and the
claims of an operator's identity token.

Deployed, API Gateway refuses any request without a valid key of the project (infra/gateway.tf);
the function then maps the key to its client's tenant. Locally, the one-URL gateway only routes,
and this same check is the one that refuses. The map comes from the environment, never from a field
the caller may set: API_KEY_TENANTS is a JSON object from the lowercase hex SHA-256 of each key to
its tenant (Terraform writes it from the client registry, infra/clients.tf; `make run` from the
example clients). Two keys of one tenant are valid at once while a key is rotated. A key is compared
by its hash only, and neither the key nor its hash is ever logged. No Firestore read: the map is
read once per process.
"""

import base64
import binascii
import functools
import hashlib
import json
import os

import flask

from shared.platform.namespace import Namespace
from shared.web.api_error import ApiError

API_KEY_HEADER = "x-api-key"
TENANTS_ENV = "API_KEY_TENANTS"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@functools.cache
def _tenants(raw: str) -> dict[str, Namespace]:
    try:
        table = json.loads(raw)
    except ValueError:
        raise RuntimeError(f"{TENANTS_ENV} is not a JSON object") from None
    if not isinstance(table, dict):
        raise RuntimeError(f"{TENANTS_ENV} is not a JSON object")
    return {str(digest).lower(): Namespace(str(tenant)) for digest, tenant in table.items()}


def tenant_of(request: flask.Request) -> Namespace:
    """The namespace of the tenant whose API key the request carries; 401 without a valid one."""
    key = request.headers.get(API_KEY_HEADER, "")
    if not key:
        raise ApiError(401, f"an API key is required in the {API_KEY_HEADER} header", API_KEY_HEADER)
    space = _tenants(os.environ.get(TENANTS_ENV, "{}")).get(key_hash(key))
    if space is None:
        raise ApiError(401, "the API key is not valid", API_KEY_HEADER)
    return space


def token_claims(token: str) -> dict:
    """The claims of a JWT, read without checking its signature: only for a token the platform
    has already verified (Cloud Run's IAM check of the admin function); ValueError if unreadable."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("the token's claims are unreadable") from None
    if not isinstance(claims, dict):
        raise ValueError("the token's claims are not an object")
    return claims
