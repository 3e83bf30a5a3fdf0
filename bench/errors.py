"""The one exception type for mistakes a user can fix.

The CLI prints a ``UserError`` as a single ``error: ...`` line and exits with status 2;
anything else is a bug and keeps its traceback.
"""
import sys


class UserError(Exception):
    """Bad input, a missing path or an unknown name: one line that says what and where."""


def report_user_error(exc: UserError) -> int:
    """Print ``exc`` as the one ``error: ...`` line on stderr; returns the exit status, 2 (every entry point)."""
    print(f"error: {exc}", file=sys.stderr)
    return 2
