"""The project's exceptions: one hierarchy, each message says what was wrong and what to do.

Notebooks let these propagate; ``lib.notebook.setup`` shows them in a report as one clear
message instead of a traceback, and ``knack-nb run`` prints the message on stderr. A message
never carries a credential: the constructor redacts it (lib/redact.py), so it is clean
wherever it goes (papermill's ``evalue``, a report, a log line, stderr); and it is cleaned
of terminal escape sequences and control characters (lib/text.py), which a service's text
in it may hold.
"""

from lib.redact import redact
from lib.text import clean


class KnackNbError(Exception):
    """Base class of every error this project raises on purpose."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(clean(a)) if isinstance(a, str) else a for a in args))


class ConfigError(KnackNbError):
    """A params file, a notebook parameter or an environment variable is wrong."""


class UnknownAppError(ConfigError):
    """No ``params/<app>.yaml`` for the app name."""


class UnknownContainerError(ConfigError):
    """The container is not configured in the app's params file."""


class MissingCredentialError(ConfigError):
    """A credential the run needs is not in the environment."""

    def __init__(self, *variables: str, purpose: str) -> None:
        self.variables = variables
        names = " and ".join(variables)
        super().__init__(
            f"{names} {'is' if len(variables) == 1 else 'are'} not set: {purpose}. "
            f"Set {'it' if len(variables) == 1 else 'them'} in the environment "
            "(never as a notebook parameter)."
        )


class KnackAPIError(KnackNbError):
    """Knack answered with an error, or with something that is not what its API promises."""


class SocrataError(KnackNbError):
    """Socrata refused a request, or kept failing it."""


class ArcGISError(KnackNbError):
    """ArcGIS refused a request, or kept failing it."""


class StoreError(KnackNbError):
    """S3 refused or failed an operation."""


class MissingParameterError(ConfigError):
    """A notebook parameter that must be given was not: its default is only the demo's."""

    def __init__(self, *, notebook: str, parameter: str, hint: str) -> None:
        self.notebook = notebook
        self.parameter = parameter
        self.hint = hint
        super().__init__(f"{notebook} needs its {parameter!r} parameter: {hint}")


class CorruptObjectError(StoreError):
    """An object in S3 that should hold JSON does not (the message names its key)."""
