"""User mistakes: the CLI prints them as one line and exits with code 2, no traceback."""


class UsageError(ValueError):
    """A bad parameter, option or input file; the message names it and what is allowed."""
