"""Notifications: a row per recipient in the metadata database, and an email through SMTP when configured."""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
from email.message import EmailMessage

from edupulse.conf import SmtpSettings
from edupulse.meta.accounts import UserInfo
from edupulse.meta.db import MetadataStore
from edupulse.meta.governance import Notification


class Notifier:
    def __init__(self, meta: MetadataStore, smtp: SmtpSettings) -> None:
        self.meta = meta
        self.smtp = smtp

    def notify_admins(self, recipients: list[UserInfo], kind: str, subject: str, body: str,
                      now: dt.datetime) -> list[int]:
        """Record one notification per recipient and email it; a failed email is noted on the row, never lost."""
        ids = []
        for user in recipients:
            with self.meta.session() as s, s.begin():
                row = Notification(user_id=user.id, created_at=now, kind=kind, subject=subject[:300], body=body)
                s.add(row)
                s.flush()
                ids.append(row.id)
            error = self.send(user.email, subject, body) if self.smtp.host else None
            with self.meta.session() as s, s.begin():
                stored = s.get(Notification, ids[-1])
                assert stored is not None
                if self.smtp.host:
                    stored.emailed_at = None if error else dt.datetime.now(dt.UTC)
                    stored.email_error = error
        return ids

    def send(self, to: str, subject: str, body: str) -> str | None:
        """Send one email; returns the error, if any."""
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            if self.smtp.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.smtp.host, self.smtp.port,
                                                        timeout=self.smtp.timeout_seconds,
                                                        context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout_seconds)
            with client:
                if self.smtp.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.smtp.username:
                    client.login(self.smtp.username, self.smtp.password)
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


def notifications(meta: MetadataStore, user_id: int, limit: int = 50) -> list[dict[str, object]]:
    from sqlalchemy import select

    with meta.session() as s:
        rows = s.scalars(select(Notification).where(Notification.user_id == user_id)
                         .order_by(Notification.id.desc()).limit(limit))
        return [{"id": n.id, "created_at": n.created_at.isoformat(), "kind": n.kind, "subject": n.subject,
                 "body": n.body, "emailed": n.emailed_at is not None, "email_error": n.email_error} for n in rows]
