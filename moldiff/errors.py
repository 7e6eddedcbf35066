"""The one exception type users see: the CLI prints its message on one line and exits non-zero."""


class MoldiffError(Exception):
    """A problem with the user's input or environment, described in one line."""
