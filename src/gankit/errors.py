"""The one exception type that reaches users as a one-line message (exit code 2)."""


class GankitError(Exception):
    """A problem with the user's input: the message says what was wrong and what to do."""
