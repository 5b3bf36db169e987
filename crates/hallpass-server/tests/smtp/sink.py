"""An SMTP sink for hallpass's mail tests: a real SMTP server (aiosmtpd) on 127.0.0.1 that
writes every message it accepts to a folder, one file per message.

    sink.py --port PORT --dir DIR [--kill-pid PID] [--reject-rcpt SUBSTRING]
            [--tls starttls|implicit --tls-dir TLSDIR] [--auth USER:PASSWORD]

--kill-pid: on the first message, after the whole message arrived and before answering
250, kill that process with SIGKILL (a crash between SMTP acceptance and the outbox
update); the message is still written, as a real server that took it would keep it.
--reject-rcpt: answer 550 to RCPT TO addresses containing SUBSTRING.
--tls starttls: offer STARTTLS and refuse MAIL before it; --tls implicit: TLS from the
first byte (smtps). Either makes a throw-away CA and a certificate for 127.0.0.1 and
localhost signed by it (the `cryptography` package), and writes the CA to TLSDIR/ca.pem
for the client to trust. Each message file then records the TLS version in X-Sink-TLS.
--auth: require AUTH (PLAIN or LOGIN) with exactly these credentials before MAIL.
Prints "ready" on stdout once it listens.
"""

import argparse
import asyncio
import datetime
import ipaddress
import os
import signal
import ssl
import sys
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def make_certificates(folder):
    """A CA and a server certificate it signs, for 127.0.0.1 and localhost; the CA goes
    to folder/ca.pem. Returns an SSL server context with the server certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hallpass test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with open(os.path.join(folder, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    cert_path = os.path.join(folder, "server.pem")
    key_path = os.path.join(folder, "server.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


class Authenticator:
    """Accepts exactly one user and password (PLAIN or LOGIN)."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            mechanism in ("PLAIN", "LOGIN")
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False)


class Sink:
    def __init__(self, folder, kill_pid, reject):
        self.folder = folder
        self.kill_pid = kill_pid
        self.reject = reject
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%06d-%s.eml" % (self.count, uuid.uuid4().hex)
        tmp = os.path.join(self.folder, "." + name)
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            tls = server.transport.get_extra_info("ssl_object")
            f.write(("X-Sink-TLS: %s\r\n" % (tls.version() if tls else "none")).encode())
            f.write(("X-Sink-Auth: %s\r\n" % (session.authenticated and "yes" or "no")).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.folder, name))
        if self.kill_pid and self.count == 1:
            os.kill(self.kill_pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
        return "250 OK queued"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--kill-pid", type=int, default=0)
    p.add_argument("--reject-rcpt", default="")
    p.add_argument("--tls", choices=["starttls", "implicit"], default=None)
    p.add_argument("--tls-dir", default=None)
    p.add_argument("--auth", default=None)
    a = p.parse_args()
    options = {}
    if a.tls:
        ctx = make_certificates(a.tls_dir)
        if a.tls == "starttls":
            options.update(tls_context=ctx, require_starttls=True)
        else:
            options.update(ssl_context=ctx)
    if a.auth:
        user, _, password = a.auth.partition(":")
        # aiosmtpd's auth_require_tls knows only STARTTLS: with implicit TLS (and without
        # TLS, where the test asked for none) AUTH must be offered regardless.
        options.update(
            authenticator=Authenticator(user, password), auth_required=True,
            auth_require_tls=a.tls == "starttls",
        )
    c = Controller(
        Sink(a.dir, a.kill_pid, a.reject_rcpt), hostname="127.0.0.1", port=a.port, **options
    )
    c.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test closes stdin or kills us
    finally:
        c.stop()


if __name__ == "__main__":
    main()
