"""A raw Kafka connection for the checks and benchmarks that need exact bytes: request header
v1, non-flexible bodies, SaslHandshake/SaslAuthenticate, and a SCRAM login."""
import base64
import hashlib
import hmac
import os
import socket
import struct

from common import check


def connect(address):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def request(s, api, version, corr, body):
    header = struct.pack(">hhih", api, version, corr, 4) + b"test"
    s.sendall(struct.pack(">i", len(header) + len(body)) + header + body)


def response(s):
    size = recv_exactly(s, 4)
    if size is None:
        return None
    return recv_exactly(s, struct.unpack(">i", size)[0])


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def string(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def authenticate(s, corr, token):
    request(s, 36, 1, corr, struct.pack(">i", len(token)) + token)
    body = response(s)
    check(body is not None, "no SaslAuthenticate answer")
    _, error, length = struct.unpack(">ihh", body[:8])
    message = body[8:8 + length].decode() if length >= 0 else None
    rest = body[8 + max(length, 0):]
    (size,) = struct.unpack(">i", rest[:4])
    return error, message, rest[4:4 + size]



def scram_login(s, user, password, mechanism, salted=None, corr=1):
    """SaslHandshake v1 then the SCRAM exchange (RFC 5802) on `s`; returns the error code of
    the final step and the salted password (pass it back as `salted` to skip the client's
    PBKDF2 next time: the salt and iterations of a user do not change)."""
    digest = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}[mechanism]
    request(s, 17, 1, corr, string(mechanism))
    body = response(s)
    check(body is not None and struct.unpack(">ih", body[:6])[1] == 0, f"SaslHandshake {mechanism} refused")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    error, _, server_first = authenticate(s, corr + 1, b"n,," + first_bare.encode())
    if error != 0:
        return error, salted
    fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
    if salted is None:
        salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    signature = hmac.new(digest(client_key).digest(), auth_message, digest).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    error, _, _ = authenticate(s, corr + 2, f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    return error, salted
