"""Email through a project's SMTP channel. The message's Message-ID is made from the delivery's idempotency key,
so a message sent again after a crash carries the same Message-ID (and an X-EduPulse-Idempotency-Key header)."""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from edupulse.journeys.outbox import Outcome, Outgoing

ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# answers that will not change by trying again (mailbox unknown, refused) versus those that may
PERMANENT = range(500, 600)


def message(out: Outgoing, sender: str) -> EmailMessage:
    request = out.request
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = request["to"]
    mail["Subject"] = request["subject"]
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{out.idempotency_key}@edupulse>"
    mail["X-EduPulse-Idempotency-Key"] = out.idempotency_key
    mail["Content-Language"] = "zh-CN" if request.get("language") == "zh" else "en"
    mail.set_content(request["text"])
    return mail


def send(out: Outgoing, config: dict[str, Any], password: str, timeout: float) -> Outcome:
    to = str(out.request.get("to") or "")
    if not ADDRESS.match(to):
        return Outcome(False, f"no e-mail address to send to ({to!r})", retry=False)
    host, port = str(config["host"]), int(config.get("port") or 25)
    security = config.get("security", "none")
    try:
        if security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if config.get("username"):
                client.login(str(config["username"]), password)
            refused = client.send_message(message(out, str(config.get("sender") or "edupulse@localhost")))
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, f"recipient refused: {exc.recipients}", retry=False)
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", retry=exc.smtp_code not in PERMANENT)
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")
    if refused:
        return Outcome(False, f"recipient refused: {refused}", retry=False)
    return Outcome(True, f"accepted by {host}:{port}")
