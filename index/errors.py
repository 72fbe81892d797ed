"""Errors Wenda reports to users as one clear line (never a traceback)."""


class WendaError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""


class IndexMismatchError(WendaError):
    """The stored index was built with another model, chunking or format."""


class IndexFormatError(IndexMismatchError):
    """The stored index was written by another version of Wenda; `wenda index` rebuilds it from the cache."""


class IndexMissingError(WendaError):
    """No index has been built in the configured directory yet."""


class DamagedIndexError(WendaError):
    """An index file or CURRENT fails its checks; `wenda index` repairs it. `what` names the damage."""

    def __init__(self, what: str, hint: str = "run `wenda index` to repair it") -> None:
        super().__init__(f"{what}; {hint}")
        self.what = what


class UsageError(WendaError):
    """A setting or argument is wrong (exit status 2, like a command-line usage error)."""


class IndexLockedError(WendaError):
    """Another `wenda index` holds the index directory."""


class ModelLoadError(WendaError):
    """The configured embedding model cannot be loaded."""


class QueryError(WendaError):
    """A question that cannot be searched (empty, too long, not text)."""
