"""Where a tenant's documents live. Every store takes a Namespace and names every document through it,
so no request can name another tenant's data.

A tenant's documents are under `tenants/{tenant}/` (subcollections keep their collection ids, so the
collection-group index exemptions and TTL policies of infra/firestore.tf apply to every tenant). The
`default` tenant, the deployment's data from before tenants existed, lives at the root: its
documents are where they always were, with no migration.
"""

import re
from dataclasses import dataclass

DEFAULT_TENANT = "default"
TENANTS = "tenants"
TENANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")  # lower case: a bucket folder and a Firestore id


@dataclass(frozen=True)
class Namespace:
    tenant: str = DEFAULT_TENANT

    def __post_init__(self):
        if not TENANT_NAME.match(self.tenant):
            raise ValueError(f"{self.tenant[:60]!r} is not a tenant name (lower-case letters, digits, _ or -)")

    @property
    def prefix(self) -> str:
        return "" if self.tenant == DEFAULT_TENANT else f"{TENANTS}/{self.tenant}/"

    def path(self, relative: str) -> str:
        """The full path of a document or collection given relative to the tenant."""
        return self.prefix + relative


ROOT = Namespace()


def of_path(path: str) -> Namespace:
    """The namespace a full document path belongs to."""
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == TENANTS:
        return Namespace(parts[1])
    return ROOT


def collection_id(path: str) -> str:
    """The collection a document path is in: `cpa_offers` for `tenants/a/cpa_offers/7`."""
    return path.rsplit("/", 2)[-2]
