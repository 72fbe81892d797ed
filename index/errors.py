"""Errors Wenda reports to users as one clear line (never a traceback)."""


class WendaError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""


class IndexMismatchError(WendaError):
    """The stored index was built with another model, chunking or format."""


class IndexMissingError(WendaError):
    """No index has been built in the configured directory yet."""


class IndexLockedError(WendaError):
    """Another `wenda index` holds the index directory."""


class ModelLoadError(WendaError):
    """The configured embedding model cannot be loaded."""


class QueryError(WendaError):
    """A question that cannot be searched (empty, too long, not text)."""
