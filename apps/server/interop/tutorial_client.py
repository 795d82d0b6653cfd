#!/usr/bin/env python3
"""A Signet client written the way the tutorial writes one: Python 3 standard library only.

It signs with the tutorial's canonical form, json.dumps(obj, separators=(",", ":"),
sort_keys=True), which equals RFC 8785 (JCS) for ASCII strings and integers (DESIGN 1.3), and
checks every response envelope's signature and its request_id / nonce echo.

usage: python3 tutorial_client.py BASE_URL KEYRING_PATH

Calls server_identity, batch_sum, start_long_task and poll_job (until the job is done), prints
one JSON summary line and exits 0; on any failure it prints the reason to stderr and exits 1.
"""

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


def signature_of(envelope, secret):
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    return hmac.new(secret.encode("utf-8"), canonical(unsigned).encode("utf-8"), hashlib.sha256).hexdigest()


class Client:
    def __init__(self, base_url, server_id, client_id, kid, secret):
        self.base_url = base_url.rstrip("/")
        self.server_id = server_id
        self.client_id = client_id
        self.kid = kid
        self.secret = secret
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
        request["signature"] = signature_of(request, self.secret)
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
        expected = signature_of(envelope, self.secret)
        check(hmac.compare_digest(expected, signature), f"{tool}: the response signature does not verify")
        # The verifier must tell a changed envelope apart, or it proves nothing.
        altered = dict(envelope, ts_ms=envelope["ts_ms"] + 1)
        check(
            not hmac.compare_digest(signature_of(altered, self.secret), signature),
            f"{tool}: an altered response still verifies",
        )
        check(envelope.get("v") == "mcp/0.1", f"{tool}: response version {envelope.get('v')!r}")
        check(envelope.get("request_id") == request["request_id"], f"{tool}: request_id not echoed")
        check(envelope.get("nonce") == request["nonce"], f"{tool}: nonce not echoed")
        check(envelope.get("server_id") == self.server_id, f"{tool}: response from another server")
        check(isinstance(envelope.get("ts_ms"), int), f"{tool}: ts_ms is not an integer")
        self.verified += 1


def main(argv):
    if len(argv) != 3:
        print("usage: python3 tutorial_client.py BASE_URL KEYRING_PATH", file=sys.stderr)
        return 2
    base_url, keyring_path = argv[1], argv[2]
    with open(keyring_path, encoding="utf-8") as f:
        keyring = json.load(f)
    entry = keyring["clients"][0]
    key = entry["keys"][0]
    client = Client(base_url, keyring["server_id"], entry["client_id"], key["kid"], key["secret"])

    identity = client.call("server_identity", {})
    check(identity["ok"] is True and identity["status"] == "ok", f"server_identity: {identity!r}")
    info = identity["result"]
    check(info["server_id"] == keyring["server_id"], f"server_identity: server_id {info['server_id']!r}")
    check(info["fingerprint"].startswith("sha256:"), f"server_identity: fingerprint {info['fingerprint']!r}")
    check(set(info["capabilities"]["tools"]) == EXPECTED_TOOLS, f"server_identity: tools {info['capabilities']['tools']!r}")

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
