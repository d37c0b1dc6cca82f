"""The project's NGINX configuration rendered for loopback, and a recording upstream server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deployments._project import DEPLOYMENTS

NGINX_DIR = DEPLOYMENTS / "nginx"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Seen:
    """One request as the upstream received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A loopback HTTP server recording every request; echoes WebSocket bytes after a 101.

    Not an ASGI app served by ``tests.fixtures.asgi_server``: after the 101 it echoes the raw
    bytes NGINX relays, unframed, which only a handler that owns the socket can do.
    """

    name: str
    seen: list[Seen] = field(default_factory=list)
    # path -> extra response headers
    answer_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                upstream.seen.append(Seen(self.command, self.path, headers, body))
                if headers.get("upgrade", "").lower() == "websocket":
                    self._upgrade(headers)
                    return
                payload = f'{{"upstream": "{upstream.name}"}}'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in upstream.answer_headers.get(self.path, {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _upgrade(self, headers: dict[str, str]) -> None:
                key = headers["sec-websocket-key"] + _WS_GUID
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.end_headers()
                self.wfile.flush()
                while chunk := self.connection.recv(4096):  # echo until the client closes
                    self.connection.sendall(chunk)
                self.close_connection = True

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def htpasswd(path: Path, user: str, password: str) -> None:
    """An htpasswd file with one apr1 (MD5) entry, made by ``openssl passwd``."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", password], check=True, capture_output=True, text=True
    ).stdout.strip()
    path.write_text(f"{user}:{hashed}\n")


def _sub(
    text: str, pattern: str, replacement: str | Callable[[re.Match[str]], str], count: int
) -> str:
    """Replace ``pattern`` exactly ``count`` times, failing when the config no longer has it."""
    new, made = re.subn(pattern, replacement, text)
    assert made == count, f"expected {count} match(es) of {pattern!r} in the config, found {made}"
    return new


@dataclass
class Rendered:
    """The config rendered into ``prefix`` with its loopback ports."""

    prefix: Path
    conf: Path
    error_log: Path
    http_port: int
    https_port: int
    cert: Path


def render(
    prefix: Path,
    *,
    api_port: int | Sequence[int],
    prefect_port: int | Sequence[int],
    htpasswd_file: Path,
    worker_processes: int = 1,
    internal_prefect_port: int | None = None,
) -> Rendered:
    """Copy the project's NGINX files to ``prefix``, adapted to loopback and temporary paths.

    ``api_port`` and ``prefect_port`` may name several replicas: each becomes a server of its
    upstream, as the compose service's DNS name resolving to every replica does. With
    ``internal_prefect_port``, a plain-HTTP loopback listener there forwards to the Prefect
    upstream (WebSockets included) without auth: the address Socialflow's processes use, as
    compose's ``prefect-server`` name or Kubernetes' Service is on a private network.
    """
    import os

    logs = prefix / "logs"
    logs.mkdir(parents=True)
    cert, key = self_signed(prefix)
    http_port, https_port = free_port(), free_port()
    shutil.copytree(NGINX_DIR / "snippets", prefix / "snippets")
    shutil.copy(Path("/etc/nginx/mime.types"), prefix / "mime.types")

    main = (NGINX_DIR / "nginx.conf").read_text()
    main = _sub(main, r"pid /var/run/nginx\.pid;", f"pid {prefix}/nginx.pid;", 1)
    main = _sub(main, r"/var/log/nginx/", f"{logs}/", 2)
    main = _sub(main, r"worker_processes auto;", f"worker_processes {worker_processes};", 1)
    ports = [api_port] if isinstance(api_port, int) else list(api_port)
    main = _sub(
        main,
        r"( *)server api:8000( [^;]*;)",
        lambda m: "\n".join(f"{m[1]}server 127.0.0.1:{port}{m[2]}" for port in ports),
        1,
    )
    prefect_ports = [prefect_port] if isinstance(prefect_port, int) else list(prefect_port)
    main = _sub(
        main,
        r"( *)server prefect-server:4200( [^;]*;)",
        lambda m: "\n".join(f"{m[1]}server 127.0.0.1:{port}{m[2]}" for port in prefect_ports),
        1,
    )
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = _sub(main, r"\nhttp \{\n", "\nhttp {\n" + temp, 1)
    if os.geteuid() == 0:  # workers must read the temporary files (pytest's dirs are 0700)
        main = "user root;\n" + main

    servers = (NGINX_DIR / "socialflow.conf").read_text()
    servers = _sub(servers, r"listen 80;", f"listen 127.0.0.1:{http_port};", 1)
    servers = _sub(
        servers, r"listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;", 1
    )
    servers = _sub(servers, r"\n *listen \[::\]:\d+[^;]*;", "", 2)
    servers = _sub(servers, r"/etc/nginx/tls/fullchain\.pem", str(cert), 1)
    servers = _sub(servers, r"/etc/nginx/tls/privkey\.pem", str(key), 1)
    servers = _sub(servers, r"/etc/nginx/htpasswd", str(htpasswd_file), 2)
    servers = _sub(servers, r"/var/www/acme", str(prefix / "acme"), 1)

    if internal_prefect_port is not None:
        servers += (
            "\nserver {\n"
            f"    listen 127.0.0.1:{internal_prefect_port};\n"
            "    client_max_body_size 0;\n"
            "    location / {\n"
            "        include snippets/proxy.conf;\n"
            "        proxy_read_timeout 300s;\n"
            "        proxy_pass http://prefect_server;\n"
            "    }\n"
            "}\n"
        )
    conf = prefix / "nginx.conf"
    conf.write_text(main)
    (prefix / "socialflow.conf").write_text(servers)
    return Rendered(prefix, conf, logs / "startup.log", http_port, https_port, cert)


def nginx_argv(rendered: Rendered, *extra: str) -> list[str]:
    """The nginx command line for the rendered config."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    return [
        binary,
        "-p",
        str(rendered.prefix),
        "-c",
        str(rendered.conf),
        "-e",
        str(rendered.error_log),
        *extra,
    ]
