"""The one exception type for mistakes a user can fix.

The CLI prints a ``UserError`` as a single ``error: ...`` line and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input, a missing path or an unknown name: one line that says what and where."""
