"""Sending one outbox message over SMTP (the standard library's ``smtplib``)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from matcher.jobs.settings import JobSettings
from matcher.store.models import NotificationRow

SENT, FAILED = "sent", "failed"


def message(row: NotificationRow, sender: str) -> EmailMessage:
    """The e-mail of an outbox row; its Message-ID is the row's key, so that a receiver can
    drop the copy a retried send may deliver twice."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = row.recipient
    mail["Subject"] = row.subject
    mail["Message-ID"] = make_msgid(idstring=row.key.replace(":", "."), domain="techmatch")
    mail.set_content(row.body)
    return mail


def send(row: NotificationRow, settings: JobSettings) -> None:
    """Send one message (raises ``OSError`` / ``smtplib.SMTPException`` on failure)."""
    assert settings.smtp_host is not None
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message(row, settings.smtp_from))
