"""A tiny local SMTP server for the tests (enough of the protocol for smtplib), keeping what it was sent:
``smtp_server.mails`` (``{"from", "rcpt", "data"}``) and ``smtp_server.auth``."""

from __future__ import annotations

import base64
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        mail: dict[str, Any] = {"rcpt": []}
        self.reply("220 localhost test SMTP")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-localhost")
                self.reply("250 AUTH PLAIN")
            elif verb == "HELO":
                self.reply("250 localhost")
            elif verb == "AUTH":
                self.server.auth.append(base64.b64decode(line.split()[-1]).split(b"\0"))  # type: ignore[attr-defined]
                self.reply("235 ok")
            elif verb == "MAIL":
                mail["from"] = line.decode().strip()
                self.reply("250 ok")
            elif verb == "RCPT":
                mail["rcpt"].append(line.decode().strip())
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode())
                mail["data"] = "".join(data)
                self.server.mails.append(mail)  # type: ignore[attr-defined]
                mail = {"rcpt": []}
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp_server() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.mails, server.auth = [], []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
