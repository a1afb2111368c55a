"""The one exception type for mistakes a user can fix (bad paths, bad flags, bad files).

The command line prints it as a single line, ``rnnlab: error: <message>``, and exits non-zero;
any other exception is a bug and keeps its traceback.
"""


class RnnlabError(Exception):
    """A user-facing error: the message says which file or value is wrong and what to do."""


def require(condition: bool, flag: str, value, allowed: str) -> None:
    """RnnlabError ``--flag value: must be <allowed>`` unless ``condition``: the one check behind every
    flag and setting (``rnnlab.cli.flags``, the configs' ``validate``).

    >>> require(0.5 > 0, "--lr", 0.5, "> 0")
    >>> require(-1 > 0, "--lr", -1, "> 0")
    Traceback (most recent call last):
    ...
    rnnlab.errors.RnnlabError: --lr -1: must be > 0
    """
    if not condition:
        raise RnnlabError(f"{flag} {value}: must be {allowed}")
