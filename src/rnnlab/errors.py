"""The one exception type for mistakes a user can fix (bad paths, bad flags, bad files).

The command line prints it as a single line, ``rnnlab: error: <message>``, and exits non-zero;
any other exception is a bug and keeps its traceback.
"""


class RnnlabError(Exception):
    """A user-facing error: the message says which file or value is wrong and what to do."""
