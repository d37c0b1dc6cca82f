"""Password rules every way of setting a password applies: length, common passwords, email name.

Common passwords are the 30,000 of zxcvbn's ``passwords`` frequency list (from leaked password
corpora), shipped inside the package: nothing is downloaded at run time.
"""

from __future__ import annotations

from functools import lru_cache

from socialflow.core.errors import ValidationError

__all__ = ["MIN_PASSWORD_LENGTH", "PasswordRejected", "check_password"]

MIN_PASSWORD_LENGTH = 10
#: bcrypt/argon2 inputs are capped; a longer password is a paste error or an attempt to burn CPU
MAX_PASSWORD_LENGTH = 256
_MIN_NAME_LENGTH = 3


class PasswordRejected(ValidationError):
    """A password breaks one or more rules; each is listed in ``problems``."""

    code = "password_rejected"


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # imported on first use: the list takes ~0.1 s to load, and most processes never need it
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, *, email: str = "") -> list[str]:
    """What is wrong with ``password``, one sentence per broken rule; empty when it is fine."""
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(
            f"must be at least {MIN_PASSWORD_LENGTH} characters long (it has {len(password)})"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    if password.strip().lower() in _common_passwords():
        problems.append("is one of the most common passwords; choose one nobody else uses")
    name = email.split("@")[0].lower()
    # a one- or two-letter name would forbid most passwords without making any safer
    if len(name) >= _MIN_NAME_LENGTH and name in password.lower():
        problems.append("must not contain the name of your email address")
    return problems


def check_password(password: str, *, email: str = "", field: str = "body.password") -> None:
    """Refuse a password that breaks a rule.

    Args:
        password: The proposed password.
        email: The account's email; its name part may not appear in the password.
        field: Where the password was sent, named in the error (``body.new_password``).

    Raises:
        PasswordRejected: 422, naming the field and every rule broken.
    """
    problems = password_problems(password, email=email)
    if problems:
        msg = f"{field.removeprefix('body.')}: " + "; ".join(problems)
        raise PasswordRejected(
            msg,
            problems=[
                {"field": field, "message": problem, "type": "password_rejected"}
                for problem in problems
            ],
        )
