"""User mistakes: the CLI prints them as one line and exits with code 2, no traceback."""


# Said by every stage that cannot reach a hub model or dataset, after the params to point at local files.
OFFLINE_RUN = "or run the whole pipeline offline with `acd demo` (its params.yaml points every source at local files)"


class UsageError(ValueError):
    """A bad parameter, option or input file; the message names it and what is allowed."""
