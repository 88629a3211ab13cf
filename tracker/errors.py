"""Every error the tracker expects, rooted in TrackerError: a sentence that says what to do.

The command line prints a TrackerError as its one-sentence message and exits 1; the HTTP edges
answer it with a 4xx (or a 503 for StoreUnavailable). Anything else is a bug and keeps its
traceback. Each class says which rule it guards; the module that enforces the rule raises it.
"""

from __future__ import annotations


class TrackerError(Exception):
    """An expected failure; the message is one sentence for the person who can fix it."""


# --- configuration, sites, credentials -----------------------------------------------------------


class ConfigError(TrackerError):
    """A configuration value is missing or malformed; the message names the variable."""


class SiteError(TrackerError):
    """A site could not be created or found; the message says why."""


class InvalidPassword(TrackerError):
    """A password that is too short to be stored."""


class InvalidIdentity(TrackerError):
    """The value is neither a plausible email address nor a phone number."""


class InvalidMoney(TrackerError):
    """An amount or currency that cannot be represented exactly."""


class MalformedJson(TrackerError):
    """A body that is not strict JSON (tracker.strictjson); the message says what is wrong."""


# --- the collector ------------------------------------------------------------------------------


class InvalidEvent(TrackerError):
    """The beacon or event is malformed; the message says which field and why."""


class StoreUnavailable(TrackerError):
    """The database did not take the page views; nothing was acknowledged, the client may retry."""


# --- webhooks -------------------------------------------------------------------------------------


class BadSignature(TrackerError):
    """The delivery is not signed with a secret stored for this site and provider."""


class MalformedPayload(MalformedJson):
    """The body is not the strict JSON object a store sends."""


class InvalidOrder(TrackerError):
    """The JSON is well formed but does not describe an order we can record."""


class UnreadableBody(TrackerError):
    """A sealed inbox body that this instance's secret key cannot open."""


# --- reports --------------------------------------------------------------------------------------


class ReportQueryError(TrackerError):
    """A report parameter is missing or malformed; the message is a sentence for a 400."""


class CostError(TrackerError):
    """Spend rows that cannot be imported; `errors` lists each bad line, nothing was saved."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or []


class ClaimError(TrackerError):
    """Platform claims that cannot be imported; `errors` lists each bad line, nothing was saved."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or []


class LinkError(TrackerError):
    """The SMS link builder's input cannot make a link; the message says what to fix."""
