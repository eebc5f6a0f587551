"""``stratowatch auth`` (principals, tokens, login links) and a real ``stratowatch serve`` that
bootstraps its first administrator with a one-time console link and speaks TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from stratowatch.cli import cli
from stratowatch.sharing.auth import AuthError, Authority
from stratowatch.store import open_store


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["auth", *args], catch_exceptions=False)
    return res.exit_code, res.output


def test_auth_add_list_token_disable(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'auth.db'}"
    code, out = _run(
        "add",
        "--id",
        "alice",
        "--partner",
        "CAN",
        "--kind",
        "user",
        "--scopes",
        "tracks:read,alerts:ack",
        "--store",
        store,
    )
    assert code == 0, out
    key = re.search(r"(sw_alice\.\S+)", out).group(1)  # type: ignore[union-attr]
    code, out = _run("add", "--id", "alice", "--partner", "CAN", "--scopes", "tracks:read", "--store", store)
    assert code == 2 and "exists" in out
    code, out = _run(
        "add", "--id", "bob", "--partner", "CAN", "--scopes", "tracks:read,root", "--store", store
    )
    assert code == 2 and "unknown scope" in out
    code, out = _run("list", "--store", store)
    assert code == 0 and re.search(r"alice\s+CAN\s+user\s+active\s+alerts:ack,tracks:read", out)
    assert key.split(".", 1)[1] not in out
    code, token = _run(
        "token", "--id", "alice", "--scopes", "tracks:read", "--ttl-s", "120", "--store", store
    )
    assert code == 0, token
    code, out = _run("token", "--id", "alice", "--scopes", "admin", "--store", store)
    assert code == 2 and "scope_not_granted" in out
    code, link = _run("login-url", "--id", "alice", "--url", "https://node.example:8443", "--store", store)
    assert code == 0 and link.startswith("https://node.example:8443/?login=")
    s = open_store(store)
    try:
        authority = Authority(s)
        principal, claims = authority.verify(token.strip())
        assert (principal.subject, principal.scopes, claims["exp"] - claims["iat"]) == (
            "alice",
            frozenset({"tracks:read"}),
            120,
        )
        assert authority.check_secret("alice", key)["principal_id"] == "alice"
    finally:
        s.close()
    assert _run("disable", "alice", "--store", store)[0] == 0
    assert _run("disable", "nobody", "--store", store)[0] == 2
    s = open_store(store)
    try:
        with pytest.raises(AuthError, match="disabled_principal"):
            Authority(s).verify(token.strip())
        actions = [e["action"] for e in s.audit_log(limit=20)]
        assert {"principal_create", "token_issue", "principal_disable", "login_link"} <= set(actions)
    finally:
        s.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "node.crt", tmp_path / "node.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_over_tls_bootstraps_an_admin_with_a_one_time_link(tmp_path: Path) -> None:
    cert, _key = _self_signed(tmp_path)
    port = _free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f"""store_url = "sqlite:///{tmp_path / "node.db"}"
[node]
partner = "CAN"
[api]
port = {port}
tls_certfile = "node.crt"
tls_keyfile = "node.key"
[predictions]
enabled = false
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATOWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratowatch", "serve", "--config", str(config)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    try:
        link = None
        deadline = time.monotonic() + 60
        lines = []
        assert proc.stdout is not None
        while link is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"(https://127\.0\.0\.1:\d+/\?login=\S+)", line)
            if m:
                link = m.group(1)
        assert link is not None, "".join(lines)
        assert any(f"serving on https://127.0.0.1:{port}" in x for x in lines)
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=trusted, timeout=10, follow_redirects=True) as c:
            assert c.get(f"https://127.0.0.1:{port}/health").status_code == 200
            assert c.get(f"https://127.0.0.1:{port}/api/v1/tracks").status_code == 401
            r = c.get(link)  # follows the 303 to / with the session cookie set
            assert r.status_code == 200 and "console.js" in r.text
            set_cookie = r.history[0].headers["set-cookie"]
            assert "Secure" in set_cookie and "HttpOnly" in set_cookie
            who = c.get(f"https://127.0.0.1:{port}/api/v1/console/whoami").json()
            assert (who["subject"], who["partner"], who["scopes"]) == ("admin", "CAN", ["admin"])
        with httpx.Client(verify=trusted, timeout=10) as fresh:
            assert fresh.get(link, follow_redirects=False).status_code == 401  # used once already
        with pytest.raises(httpx.ConnectError), httpx.Client(timeout=10) as untrusted:
            untrusted.get(f"https://127.0.0.1:{port}/health")  # not the system's CAs' certificate
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
