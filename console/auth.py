"""Who may use the console, and how they prove it: accounts with roles, Argon2 password
hashes, login rate limiting and CSRF tokens.

Roles and what each may do:

===================  ======  =========  ========  =========
role                 board   packets    re-rate   decide
===================  ======  =========  ========  =========
screening-officer    yes     yes        yes       no
mash-manager         yes     yes        yes       yes
hub-operator         yes     no         no        no
auditor              yes     yes        no        no
===================  ======  =========  ========  =========

A hub operator watches the flow (the board carries references, ratings and gauges only) but
has no need to know a child's information; an auditor reads, and every read is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console.store import ConsoleStore, User
from mash.errors import MashError

__all__ = [
    "LOGIN_LIMIT",
    "LOGIN_WINDOW",
    "Accounts",
    "LoginRefused",
    "Role",
    "csrf_token",
    "csrf_valid",
]

# At most this many failed logins per account in the window; then the account waits.
LOGIN_LIMIT = 5
LOGIN_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 12


class Role(StrEnum):
    SCREENING_OFFICER = "screening-officer"
    MASH_MANAGER = "mash-manager"
    HUB_OPERATOR = "hub-operator"
    AUDITOR = "auditor"

    @property
    def reads_packets(self) -> bool:
        return self is not Role.HUB_OPERATOR

    @property
    def rerates(self) -> bool:
        return self in (Role.SCREENING_OFFICER, Role.MASH_MANAGER)

    @property
    def decides(self) -> bool:
        return self is Role.MASH_MANAGER

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize().replace("Mash", "MASH")


class LoginRefused(MashError):
    """Wrong name or password, or too many attempts; the message is safe to show."""


class Accounts:
    def __init__(self, store: ConsoleStore, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        # Verified against when the name is unknown, so a wrong name takes as long as a
        # wrong password and does not tell who has an account.
        self._dummy = self.hasher.hash("not a password of anyone's")

    def add(self, name: str, role: Role, password: str, at: datetime) -> None:
        if not name or len(name) > 64 or not name.replace("-", "").replace(".", "").isalnum():
            raise ValueError("a user name is letters, digits, dots and hyphens (1-64)")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
        self.store.add_user(name, role.value, self.hasher.hash(password), at)

    def login(self, name: str, password: str, now: datetime) -> User:
        if self.store.login_failures_since(name, now - LOGIN_WINDOW) >= LOGIN_LIMIT:
            raise LoginRefused(
                "Too many failed sign-in attempts for this account. Try again in 15 minutes."
            )
        user = self.store.user(name)
        try:
            self.hasher.verify(user.password_hash if user else self._dummy, password)
        except (VerificationError, InvalidHashError):
            user = None
        if user is None:
            self.store.login_failed(name, now)
            raise LoginRefused("The user name or password is not right.")
        self.store.login_succeeded(name)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.set_password_hash(name, self.hasher.hash(password))
        return user


def csrf_token(secret: str, session_id: str) -> str:
    """The token every form carries: bound to the session, unguessable without the secret."""
    return hmac.new(secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, session_id: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(secret, session_id), token or "")
