"""Debian's nginx in front of the app, with the project's own site file (deploy/nginx/cf-portal.conf.template)
and a self-signed certificate for 127.0.0.1, made with openssl in a temporary folder."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import string
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SITE_TEMPLATE = ROOT / "deploy" / "nginx" / "cf-portal.conf.template"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def render_site(values: dict[str, str]) -> str:
    """The site template with the deploy variables filled in, as `envsubst` with their names would: nginx's own
    variables ($host, ...) are left alone, and a variable the template uses but `values` lacks is an error."""
    text = SITE_TEMPLATE.read_text()
    used = {name for _, named, braced, _ in string.Template.pattern.findall(text)
            for name in (named, braced) if name.startswith("CF_")}
    missing = used - values.keys()
    if missing:
        raise KeyError(f"the nginx template needs {sorted(missing)}")
    return string.Template(text).safe_substitute(values)


@contextmanager
def running_nginx(folder: Path, *, app_addresses: list[str], https_port: int, http_port: int,
                  public_url: str) -> Iterator[Path]:
    """nginx on 127.0.0.1 (HTTPS on `https_port`, the redirect on `http_port`) balancing between the app
    processes at `app_addresses`. Yields the folder of its logs (access.log: the request, its status and the app
    address nginx sent it to, `upstream_of`); stopped on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(folder)
    servers = " ".join(f"server {address};" for address in app_addresses)
    site = render_site({"CF_SERVER_NAME": "127.0.0.1", "CF_PUBLIC_URL": public_url,
                        "CF_LISTEN_PORT": f"127.0.0.1:{https_port}", "CF_HTTP_PORT": f"127.0.0.1:{http_port}",
                        "CF_APP_SERVERS": servers, "CF_TLS_CERT": str(cert), "CF_TLS_KEY": str(key)})
    (folder / "cf-portal.conf").write_text(site)
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (folder / "nginx.conf").write_text(f"""
{"user root root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    log_format cf_upstream '$request_uri $status $upstream_addr';
    access_log {folder / "access.log"} cf_upstream;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    types {{ text/html html; }}
    include {folder / "cf-portal.conf"};
}}
""")
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    command = [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused the configuration:\n{checked.stderr}")
    proc = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_for_https(proc, f"https://127.0.0.1:{https_port}/ping", folder)
        yield folder
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def insecure_context() -> ssl.SSLContext:
    """For requests to the self-signed test certificate only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _wait_for_https(proc: subprocess.Popen, url: str, folder: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2, context=insecure_context()) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    log = folder / "error.log"
    raise RuntimeError(f"nginx did not answer {url}:\n{log.read_text()[-3000:] if log.exists() else ''}")
