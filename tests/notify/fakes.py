"""Real third-party servers on 127.0.0.1: an SMTP server (aiosmtpd) and an SMS provider (http.server),
both told which failures to answer with."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# Fake credentials shared by the fake servers and the tests that must not find them in errors or logs.
SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-smtp-password"
SMS_TOKEN = "sms-token-0123456789abcdef"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """What the SMTP server received, and what it is told to refuse."""

    received: list[Received] = field(default_factory=list)
    refuse_recipients: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    data_replies: deque[str] = field(default_factory=deque)  # replies to DATA, before accepting
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_recipients:
            return self.refuse_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        content = (envelope.original_content or b"").replace(b"\r\n", b"\n")  # as sent, in local line ends
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


class _BoundController(Controller):
    """aiosmtpd's controller on a socket bound beforehand to a free port of 127.0.0.1."""

    def __init__(self, handler: Inbox, **kwargs: Any) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self._socket.getsockname()[1], **kwargs)

    def _create_server(self) -> Awaitable[Any]:
        return self.loop.create_server(self._factory_invoker, sock=self._socket, ssl=self.ssl_context)


@contextmanager
def smtp_server(
    *,
    implicit_tls: ssl.SSLContext | None = None,
    starttls: ssl.SSLContext | None = None,
    auth: bool = False,
) -> Iterator[tuple[Inbox, int]]:
    """An SMTP server: plain, or TLS from the start (``implicit_tls``), or offering STARTTLS; with
    ``auth``, it offers AUTH (after TLS only) and takes ``SMTP_USER``/``SMTP_PASSWORD``."""
    inbox = Inbox()
    options: dict[str, Any] = {"server_hostname": "fake-smtp.test", "ready_timeout": 10}
    if starttls is not None:
        options["tls_context"] = starttls
    if auth:
        options["authenticator"] = inbox.authenticate
    controller = _BoundController(inbox, ssl_context=implicit_tls, **options)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@dataclass
class SmsRequest:
    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class SmsProviderState:
    """What the fake provider received, and the answers it gives before answering 200."""

    requests: list[SmsRequest] = field(default_factory=list)
    answers: deque[tuple[int, str]] = field(default_factory=deque)  # (status, body)
    hang: bool = False  # never answer (until the test ends): the client times out
    release: threading.Event = field(default_factory=threading.Event)
    received: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.received:
            return self.received.wait_for(lambda: len(self.requests) >= count, timeout)


class _SmsHandler(BaseHTTPRequestHandler):
    server: _SmsServer

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        with state.received:
            state.requests.append(SmsRequest(self.path, self.headers.get("Authorization"), body))
            number = len(state.requests)
            state.received.notify_all()
        if state.hang:
            state.release.wait(30)
            return
        status, text = (
            state.answers.popleft() if state.answers else (200, json.dumps({"id": f"msg_{number}"}))
        )
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


class _SmsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SmsProviderState) -> None:
        super().__init__(("127.0.0.1", 0), _SmsHandler)
        self.state = state


@contextmanager
def sms_provider() -> Iterator[tuple[SmsProviderState, str]]:
    """A fake SMS provider; yields its state and the URL to POST messages to."""
    state = SmsProviderState()
    server = _SmsServer(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1/messages"
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()
