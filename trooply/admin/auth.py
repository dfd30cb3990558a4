"""Who may use the admin API: the holder of TROOPLY_ADMIN_TOKEN, and nobody else."""

import hmac

from pydantic import SecretStr

from trooply.errors import Forbidden, Unauthorized
from trooply.tenancy.service import is_tenant_key


class AdminGate:
    def __init__(self, token: SecretStr) -> None:
        self._token = token.get_secret_value().encode()

    def admits(self, presented: str | None) -> bool:
        # Constant time: how much of a guess matched must not show in how long the answer takes.
        return presented is not None and presented != "" and hmac.compare_digest(presented.encode(), self._token)

    def admits_header(self, authorization: str) -> bool:
        """Whether an Authorization header carries the admin token (the rate limiter exempts it)."""
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.admits(token.strip())

    def check(self, presented: str | None) -> None:
        """Passes the admin token; a tenant's key is 403 (it is valid elsewhere, never here), anything else 401."""
        if self.admits(presented):
            return
        if presented and is_tenant_key(presented):
            raise Forbidden("a tenant's key may not use the admin API; send TROOPLY_ADMIN_TOKEN", code="forbidden")
        raise Unauthorized("missing or invalid admin token: send Authorization: Bearer <TROOPLY_ADMIN_TOKEN>",
                           code="invalid_admin_token")
