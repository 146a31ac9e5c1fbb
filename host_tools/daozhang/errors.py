"""The few exception types the host tools raise on purpose.

Every error a user can cause (a bad option, a bad file, an unreachable broker) is a
`DaozhangError`; the CLI prints it as one `daozhang: message` line and exits non-zero.
Anything else is a bug and keeps its traceback.
"""


class DaozhangError(Exception):
    """A problem the user can act on; its message says what and where."""


class UsageError(DaozhangError):
    """A command-line option or argument is wrong."""


class StoreError(DaozhangError):
    """The database refused, or is not in the state a command needs."""


class InputError(DaozhangError):
    """A file or message from outside is malformed; nothing was changed."""
