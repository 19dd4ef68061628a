"""The extension's one exception, translated to an HTTP answer at the edge."""

from __future__ import annotations

# The HTTP reason phrase (and JSON "reason") of every refused way out.
BLOCKED_REASON = "Blocked by the clean room"

RELEASE_HINT = (
    "Nothing leaves a clean-room workspace through the browser. To take a file out, "
    "right-click it in the file browser and choose 'Request release…': a disclosure "
    "officer reviews it, and once approved you download it from the airlock."
)


class Refused(Exception):
    """A request the workspace refuses: an HTTP status and a message for the researcher."""

    def __init__(self, status: int, message: str, *, hint: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # Refusals of a way out carry the hint on how to request a release.
        self.hint = hint

    def text(self) -> str:
        """The message, with the release hint where it applies."""
        return f"{self.message} {RELEASE_HINT}" if self.hint else self.message


def blocked(message: str) -> Refused:
    """A 403 for a way out of the workspace, pointing to 'Request release…'."""
    return Refused(403, message, hint=True)
