"""Personal access tokens for the server: random, stored hashed, scoped to one principal, revocable."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update

from catalog.entities import AuditResult, Source
from catalog.errors import InvalidArgument, NotFound, Unauthenticated
from catalog.service.base import GroupCommit, redact
from catalog.service.common import Service
from catalog.store import tables as t
from catalog.store.metastore import MetastoreStore, _aware, now

PREFIX = "cairn_"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    principal: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    comment: str | None
    created_by: str


# Every API request looks its token up: the statement is built once (SQLAlchemy memoizes its cache key).
_BY_HASH = select(t.tokens.c.token_id, t.tokens.c.principal, t.tokens.c.expires_at, t.tokens.c.revoked_at).where(t.tokens.c.token_hash == bindparam("h"))
ANONYMOUS = "anonymous"  # who an audit row names when a request proved no identity


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_lifetime(text: str | None) -> timedelta | None:
    """'30d', '12h', '90m' or None (no expiry)."""
    if text in (None, "", "never"):
        return None
    m = re.fullmatch(r"(\d+)\s*([dhm])", str(text).strip())
    if not m or int(m[1]) == 0:
        raise InvalidArgument(f"expiry {text!r} is not like 30d, 12h or 90m")
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[m[2]]: int(m[1])})


def _info(r) -> TokenInfo:  # type: ignore[no-untyped-def]
    return TokenInfo(r.token_id, r.principal, _aware(r.created_at), _aware(r.expires_at) if r.expires_at else None,
                     _aware(r.revoked_at) if r.revoked_at else None, r.comment, r.created_by)


class TokenService(Service):
    def create_token(self, principal: str | None = None, expires: str | None = "90d", comment: str | None = None) -> tuple[str, TokenInfo]:
        """A new token for `principal` (default: the caller). Only admins mint tokens for others.

        Returns the raw token, shown once, and its info; only a hash is stored.
        """
        who = principal or self.ctx.principal
        with self._uow("create_token", None, who, expires=expires, comment=comment) as uow:
            if who != uow.principal:
                uow.require_admin("creating tokens for another principal")
            else:
                uow.allow()
            uow.store.get_principal(who)
            lifetime = parse_lifetime(expires)
            raw = PREFIX + secrets.token_urlsafe(32)
            token_id = secrets.token_hex(8)
            ts = now()
            uow.conn.execute(insert(t.tokens).values(
                token_id=token_id, token_hash=digest(raw), principal=who, created_at=ts,
                expires_at=ts + lifetime if lifetime else None, comment=comment, created_by=uow.principal,
            ))
            row = uow.conn.execute(select(t.tokens).where(t.tokens.c.token_id == token_id)).one()
            return raw, _info(row)

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        """Tokens (never their secrets): admins see all, others their own."""
        with self._uow("list_tokens", None, principal, write=False) as uow:
            uow.allow()
            q = select(t.tokens).order_by(t.tokens.c.created_at)
            if not uow.authz.is_admin(uow.principal):
                q = q.where(t.tokens.c.principal == uow.principal)
            elif principal:
                q = q.where(t.tokens.c.principal == principal)
            return [_info(r) for r in uow.conn.execute(q)]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token: its owner or an admin may. Requests with it fail from then on."""
        with self._uow("revoke_token", None, token_id) as uow:
            row = uow.conn.execute(select(t.tokens).where(t.tokens.c.token_id == token_id)).first()
            if row is None:
                uow.decided = True
                raise NotFound(f"token '{token_id}' does not exist")
            if row.principal != uow.principal and not uow.authz.is_admin(uow.principal):
                uow.hide("token", token_id)
            uow.allow()
            uow.conn.execute(update(t.tokens).where(t.tokens.c.token_id == token_id).values(revoked_at=now()))
            return _info(uow.conn.execute(select(t.tokens).where(t.tokens.c.token_id == token_id)).one())


def authenticate(engine, raw: str) -> str | None:  # type: ignore[no-untyped-def]
    """The principal a raw bearer token stands for, or None (unknown, expired or revoked)."""
    return identify(engine, raw)[0]


def identify(engine, raw: str | None) -> tuple[str | None, str]:  # type: ignore[no-untyped-def]
    """(principal, "") for a valid token; (None, why not) otherwise: missing, malformed, unknown,
    revoked or expired. The reason names the token by its id, never by its secret."""
    if not raw:
        return None, "missing token"
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None, "malformed token"
    with engine.connect().execution_options(cairn_write=False) as conn:  # a read: no write lock
        row = conn.execute(_BY_HASH, {"h": digest(raw)}).first()
    if row is None:
        return None, "unknown token"
    if row.revoked_at is not None:
        return None, f"revoked token {row.token_id} of {row.principal}"
    if row.expires_at is not None and _aware(row.expires_at) <= now():
        return None, f"expired token {row.token_id} of {row.principal}"
    return row.principal, ""


def audit_refused(audit_log: GroupCommit, reason: str, attempted: dict[str, str], source: Source, request_id: str) -> None:
    """Log a refused authentication (DENIED, by ANONYMOUS) with what was attempted (method, path)
    and why; answered only once written, like every other row."""
    def work(store: MetastoreStore) -> None:
        store.insert_audit(principal=ANONYMOUS, action="authenticate", securable_kind=None, securable_name=None,
                           parameters=redact({**attempted, "reason": reason}), result=AuditResult.DENIED.value,
                           error_code=Unauthenticated.code, error_message=reason, request_id=request_id, source=source.value)

    audit_log.write(work)
