#!/usr/bin/env python3
"""A Signet client written the way the tutorial writes one: Python 3 standard library only.

It signs with the tutorial's canonical form, json.dumps(obj, separators=(",", ":"),
sort_keys=True), which equals RFC 8785 (JCS) for ASCII strings and integers (DESIGN 1.3), and
checks every response envelope's signature and its request_id / nonce echo.

usage: python3 tutorial_client.py BASE_URL KEYRING_PATH
       python3 tutorial_client.py BASE_URL --credentials CREDENTIALS_PATH

With a credentials file holding an Ed25519 key (`pnpm keygen --ed25519`), it signs the same bytes
with Ed25519 (the `cryptography` package) and accepts only responses signed by one of the server
keys the file pins, named by the response's `kid`.

Calls server_identity, batch_sum, start_long_task and poll_job (until the job is done), prints
one JSON summary line and exits 0; on any failure it prints the reason to stderr and exits 1.
"""

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
import uuid

EXPECTED_TOOLS = {
    "server_identity",
    "list_tools",
    "batch_sum",
    "start_long_task",
    "poll_job",
    "cancel_job",
    "watch_job",
}


class InteropFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise InteropFailure(message)


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def signing_bytes(envelope):
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    return canonical(unsigned).encode("utf-8")


def signature_of(envelope, secret):
    return hmac.new(secret.encode("utf-8"), signing_bytes(envelope), hashlib.sha256).hexdigest()


def key_bytes(text):
    """A key as Signet writes it: base64 (standard or url, padded or not) of 32 raw bytes."""
    raw = base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    check(len(raw) == 32, "an Ed25519 key is not 32 bytes")
    return raw


class Ed25519Signer:
    """Signs requests with the client's private key; verifies responses with a pinned server key."""

    def __init__(self, private_key, server_keys):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (
            Ed25519PrivateKey,
            Ed25519PublicKey,
        )

        self.private_key = Ed25519PrivateKey.from_private_bytes(key_bytes(private_key))
        self.server_keys = {
            k["kid"]: Ed25519PublicKey.from_public_bytes(key_bytes(k["public_key"])) for k in server_keys
        }

    def sign(self, envelope):
        return self.private_key.sign(signing_bytes(envelope)).hex()

    def verifies(self, envelope):
        from cryptography.exceptions import InvalidSignature

        signature = envelope.get("signature", "")
        public_key = self.server_keys.get(envelope.get("kid"))
        if public_key is None or len(signature) != 128 or signature != signature.lower():
            return False
        try:
            public_key.verify(bytes.fromhex(signature), signing_bytes(envelope))
            return True
        except (InvalidSignature, ValueError):
            return False


class HmacSigner:
    def __init__(self, secret):
        self.secret = secret

    def sign(self, envelope):
        return signature_of(envelope, self.secret)

    def verifies(self, envelope):
        return hmac.compare_digest(signature_of(envelope, self.secret), envelope.get("signature", ""))


class Client:
    def __init__(self, base_url, server_id, client_id, kid, signer):
        self.base_url = base_url.rstrip("/")
        self.server_id = server_id
        self.client_id = client_id
        self.kid = kid
        self.signer = signer
        self.verified = 0

    def call(self, tool, args):
        request = {
            "v": "mcp/0.1",
            "request_id": str(uuid.uuid4()),
            "ts_ms": int(time.time() * 1000),
            "client_id": self.client_id,
            "server_id": self.server_id,
            "tool": tool,
            "args": args,
            "nonce": secrets.token_urlsafe(16),
            "kid": self.kid,
        }
        request["signature"] = self.signer.sign(request)
        http_request = urllib.request.Request(
            f"{self.base_url}/trpc/{tool}",
            data=canonical(request).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(http_request, timeout=10) as response:
                status = response.status
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            raise InteropFailure(f"{tool}: HTTP {error.code}: {text}") from None
        check(status == 200, f"{tool}: HTTP {status}")
        envelope = body.get("result", {}).get("data")
        check(isinstance(envelope, dict), f"{tool}: no response envelope in {body!r}")
        self.verify(tool, request, envelope)
        return envelope

    def verify(self, tool, request, envelope):
        signature = envelope.get("signature")
        check(isinstance(signature, str), f"{tool}: the response is not signed")
        check(self.signer.verifies(envelope), f"{tool}: the response signature does not verify")
        # The verifier must tell a changed envelope apart, or it proves nothing.
        altered = dict(envelope, ts_ms=envelope["ts_ms"] + 1)
        check(not self.signer.verifies(altered), f"{tool}: an altered response still verifies")
        check(envelope.get("v") == "mcp/0.1", f"{tool}: response version {envelope.get('v')!r}")
        check(envelope.get("request_id") == request["request_id"], f"{tool}: request_id not echoed")
        check(envelope.get("nonce") == request["nonce"], f"{tool}: nonce not echoed")
        check(envelope.get("server_id") == self.server_id, f"{tool}: response from another server")
        check(isinstance(envelope.get("ts_ms"), int), f"{tool}: ts_ms is not an integer")
        self.verified += 1


def main(argv):
    pinned = None
    if len(argv) == 4 and argv[2] == "--credentials":
        base_url = argv[1]
        with open(argv[3], encoding="utf-8") as f:
            credentials = json.load(f)
        key = credentials["key"]
        if key.get("alg") == "ed25519":
            pinned = credentials["server_keys"]
            signer = Ed25519Signer(key["private_key"], pinned)
        else:
            signer = HmacSigner(key["secret"])
        keyring = {"server_id": credentials["server_id"]}
        client = Client(base_url, credentials["server_id"], credentials["client_id"], key["kid"], signer)
    elif len(argv) == 3:
        base_url, keyring_path = argv[1], argv[2]
        with open(keyring_path, encoding="utf-8") as f:
            keyring = json.load(f)
        entry = keyring["clients"][0]
        key = entry["keys"][0]
        client = Client(base_url, keyring["server_id"], entry["client_id"], key["kid"], HmacSigner(key["secret"]))
    else:
        print(
            "usage: python3 tutorial_client.py BASE_URL (KEYRING_PATH | --credentials CREDENTIALS_PATH)",
            file=sys.stderr,
        )
        return 2

    identity = client.call("server_identity", {})
    check(identity["ok"] is True and identity["status"] == "ok", f"server_identity: {identity!r}")
    info = identity["result"]
    check(info["server_id"] == keyring["server_id"], f"server_identity: server_id {info['server_id']!r}")
    check(info["fingerprint"].startswith("sha256:"), f"server_identity: fingerprint {info['fingerprint']!r}")
    check(set(info["capabilities"]["tools"]) == EXPECTED_TOOLS, f"server_identity: tools {info['capabilities']['tools']!r}")
    if pinned is not None:
        published = {(k["kid"], key_bytes(k["public_key"])) for k in info["capabilities"].get("server_keys", [])}
        check(
            {(k["kid"], key_bytes(k["public_key"])) for k in pinned} <= published,
            "server_identity: the pinned server keys are not published",
        )
        check(identity.get("kid") in {k["kid"] for k in pinned}, "server_identity: no pinned kid")

    numbers = [3, 4, 5, 100, -2]
    summed = client.call("batch_sum", {"numbers": numbers})
    check(summed["status"] == "ok", f"batch_sum: status {summed['status']!r}")
    check(summed["result"] == {"count": len(numbers), "total": sum(numbers)}, f"batch_sum: {summed['result']!r}")

    payload = {"report": "quarterly", "rows": 42, "tags": ["signed", "async"], "ok": True}
    started = client.call("start_long_task", {"seconds": 1, "payload": payload})
    check(started["status"] == "accepted", f"start_long_task: status {started['status']!r}")
    job_id = started["result"]["job_id"]
    check(isinstance(job_id, str) and job_id, "start_long_task: no job_id")

    polls = 0
    statuses = []
    deadline = time.monotonic() + 15
    while True:
        polled = client.call("poll_job", {"job_id": job_id})
        polls += 1
        status = polled["status"]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if status == "done":
            break
        check(status in ("queued", "running"), f"poll_job: job ended as {status}: {polled['error']!r}")
        check(polled["result"]["job_id"] == job_id, f"poll_job: {polled['result']!r}")
        check(time.monotonic() < deadline, "poll_job: the job did not finish within 15 s")
        time.sleep(0.1)
    check(polled["ok"] is True, "poll_job: done but not ok")
    check(polled["result"] == payload, f"poll_job: output {polled['result']!r}")

    print(
        json.dumps(
            {
                "ok": True,
                "server_id": info["server_id"],
                "tools": sorted(info["capabilities"]["tools"]),
                "sum": summed["result"],
                "job_id": job_id,
                "statuses": statuses,
                "output": polled["result"],
                "polls": polls,
                "verified": client.verified,
                "signature_length": len(polled["signature"]),
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except InteropFailure as failure:
        print(f"interop failure: {failure}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # anything else is a failure too, never a silent pass
        print(f"interop error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
