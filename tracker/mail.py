"""Sending email through the server `TRACKER_SMTP_URL` names, with the standard library.

`smtp://[user:password@]host[:port]` speaks STARTTLS when the server offers it (port 587 by
default), `smtps://…` implicit TLS (port 465). A user in the URL logs in (only over TLS, unless the
host is this machine). Every failure is a MailError whose sentence names the server.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from tracker.errors import TrackerError

TIMEOUT = 20.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class MailError(TrackerError):
    """The mail server is not configured, cannot be reached, or refused the message."""


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    implicit_tls: bool
    user: str | None
    password: str | None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str | None) -> MailServer:
        if not url:
            raise MailError("No mail server is configured; set TRACKER_SMTP_URL (smtp://user:password@host:587).")
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailError(f"TRACKER_SMTP_URL must look like smtp://user:password@host:587 or smtps://…, "
                            f"not {parts.scheme or 'that'}://….")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 587)
        except ValueError:
            raise MailError("TRACKER_SMTP_URL has a port that is not a number.") from None
        return cls(parts.hostname, port, parts.scheme == "smtps",
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


def send(server: MailServer, messages: list[EmailMessage]) -> None:
    """Send every message over one connection; raise MailError with one sentence otherwise."""
    context = ssl.create_default_context()
    try:
        if server.implicit_tls:
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
        with smtp:
            smtp.ehlo()
            if not server.implicit_tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if server.user:
                secure = server.implicit_tls or smtp.sock.__class__ is ssl.SSLSocket
                if not secure and server.host not in LOCAL_HOSTS:
                    raise MailError(f"The mail server {server.name} offers no TLS; the password is not sent "
                                    "in clear (use smtps:// or a server with STARTTLS).")
                smtp.login(server.user, server.password or "")
            for message in messages:
                smtp.send_message(message)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"The mail server {server.name} refused the login; check TRACKER_SMTP_URL.") from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(exc.recipients)
        raise MailError(f"The mail server {server.name} refused the recipient {refused}.") from None
    except smtplib.SMTPException as exc:
        raise MailError(f"The mail server {server.name} refused the message: {_first_line(exc)}.") from None
    except ssl.SSLError as exc:
        raise MailError(f"TLS with the mail server {server.name} failed: {exc.reason or exc}.") from None
    except (TimeoutError, OSError) as exc:
        raise MailError(f"Cannot reach the mail server {server.name}: {exc.strerror or exc}.") from None


def _first_line(exc: smtplib.SMTPException) -> str:
    text = exc.smtp_error.decode(errors="replace") if getattr(exc, "smtp_error", None) else str(exc)
    return text.strip().splitlines()[0].rstrip(".") if text.strip() else type(exc).__name__
