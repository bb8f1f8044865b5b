r"""Schemathesis hooks for fuzz/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

positive_data_acceptance demands that every request the spec calls valid is
accepted. openapi.yaml states every input rule that JSON Schema can express
in a regular expression every client reads alike, so that holds, with three
exceptions: a new password, a mailed token the server never issued, and a
page cursor it never issued. For the password the spec states its length and its digit; the
server also wants a lowercase and an uppercase letter of any script (Unicode
`Lowercase` and `Uppercase`, hundreds of ranges; schemathesis itself reads
`\p{Ll}` as a few Latin ranges that hold both cases) and refuses one zxcvbn
can guess (a common password, a keyboard walk, one built from the email or
name), which no schema can state at all.

The script turns the built-in check off and runs this one in its place: the
built-in check itself, for every response but those refusals, recognised
narrowly: a 422 from an operation that sets a password whose `errors` name
only the password field, each with one of the server's messages for those
rules. Any other 422 to valid data still fails the run.
"""

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# operationId -> the body field that carries the new password.
PASSWORD_SETTERS = {"register": "password", "changePassword": "new_password", "resetPassword": "new_password"}
# Operations that spend a mailed token: whether a token is still good (issued,
# unused, unexpired) is state no schema can state, so a schema-valid token the
# server never issued is a 400 `invalid_token`, as the spec documents.
TOKEN_SPENDERS = {"resetPassword", "verifyEmail", "confirmEmail"}
# Operations that take a page cursor: only a cursor the server issued is one
# (like a token, that is state), so any other schema-valid string is a 422
# naming `cursor`, as the spec documents.
CURSOR_READERS = {"listMyEvents", "listUserEvents"}
# NewPassword::parse's messages for the rules the spec cannot state.
UNSTATED = ("must contain a lowercase letter", "must contain an uppercase letter", "is too easy to guess")


def _is_unstated_password_refusal(response, case) -> bool:
    operation_id = (case.operation.definition.raw or {}).get("operationId")
    field = PASSWORD_SETTERS.get(operation_id)
    if field is None or response.status_code != 422:
        return False
    try:
        errors = response.json().get("errors") or []
    except Exception:
        return False
    return bool(errors) and all(
        e.get("field") == field and str(e.get("message", "")).startswith(UNSTATED) for e in errors
    )


def _is_unissued_token(response, case) -> bool:
    operation_id = (case.operation.definition.raw or {}).get("operationId")
    if operation_id not in TOKEN_SPENDERS or response.status_code != 400:
        return False
    try:
        return response.json().get("code") == "invalid_token"
    except Exception:
        return False


def _is_unissued_cursor(response, case) -> bool:
    operation_id = (case.operation.definition.raw or {}).get("operationId")
    if operation_id not in CURSOR_READERS or response.status_code != 422:
        return False
    try:
        errors = response.json().get("errors") or []
    except Exception:
        return False
    return bool(errors) and all(e.get("field") == "cursor" for e in errors)


@schemathesis.check
def positive_data_acceptance_except_password_letters_and_guessability(ctx, response, case):
    """positive_data_acceptance, minus the refusals of a schema-valid password the spec cannot state."""
    if (
        _is_unstated_password_refusal(response, case)
        or _is_unissued_token(response, case)
        or _is_unissued_cursor(response, case)
    ):
        return None
    return positive_data_acceptance(ctx, response, case)
