"""The one exception type for mistakes a user can fix.

The CLI prints a ``UserError`` as a single ``error: ...`` line and exits with status 2;
anything else is a bug and keeps its traceback.
"""
import sys


class UserError(Exception):
    """Bad input, a missing path or an unknown name: one line that says what and where."""


class MetricWarning(UserWarning):
    """A metric returned NaN or took a documented fallback path (0/0, constant image)."""


def first_few(names: list[str], k: int = 5, sep: str = ", ") -> str:
    """The first ``k`` of ``names`` for a one-line message, `` ...`` when there are more."""
    return sep.join(names[:k]) + (" ..." if len(names) > k else "")


def report_user_error(exc: UserError) -> int:
    """Print ``exc`` as the one ``error: ...`` line on stderr; returns the exit status, 2 (every entry point)."""
    print(f"error: {exc}", file=sys.stderr)
    return 2


def metric_warnings_as_lines() -> None:
    """From now on, show each ``MetricWarning`` (a NaN or a documented fallback) as one ``warning: ...``
    line on stderr instead of Python's file, line and source-line form; other warnings are unchanged."""
    import warnings

    show_default = warnings.showwarning
    if getattr(show_default, "metric_lines", False):  # already installed (main() called again)
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, MetricWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show_default(message, category, filename, lineno, file, line)
    show.metric_lines = True
    warnings.showwarning = show
