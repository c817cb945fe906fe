"""fine_tuning.job.succeeded|failed|cancelled events POSTed to `--webhook URL`, signed as OpenAI signs them.

OpenAI follows the Standard Webhooks scheme: headers `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,BASE64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))`, where a `whsec_`
secret is base64 after its prefix. So the official client's `client.webhooks.unwrap(body, headers)`
verifies what this module sends. Delivery runs on its own thread, so a slow or dead receiver never
holds up a job: each event is tried up to ATTEMPTS times with doubling waits, keeping its id (the
receiver can de-duplicate) and signing each try with a fresh timestamp.
"""

import base64
import hashlib
import hmac
import json
import queue
import threading
import time

from tunelab.server.store import new_id, now

ATTEMPTS = 6
FIRST_WAIT_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0
JOB_EVENTS = {
    "succeeded": "fine_tuning.job.succeeded",
    "failed": "fine_tuning.job.failed",
    "cancelled": "fine_tuning.job.cancelled",
}


def signing_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()


def signed_headers(event_id: str, body: str, secret: str, timestamp: int) -> dict[str, str]:
    digest = hmac.new(signing_key(secret), f"{event_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def job_event(status: str, job_id: str) -> dict:
    """The event object of OpenAI's fine-tuning webhooks (FineTuningJobSucceededWebhookEvent and siblings)."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "created_at": now(),
        "type": JOB_EVENTS[status],
        "data": {"id": job_id},
    }


class Webhooks:
    def __init__(self, url: str | None, secret: str | None):
        self.url, self.secret = url, secret
        self.outbox: queue.Queue = queue.Queue()
        self.sender: threading.Thread | None = None

    def job_finished(self, status: str, job_id: str) -> None:
        """Queue the event of a job that ended in `status`; nothing when no --webhook was given."""
        if not self.url or status not in JOB_EVENTS:
            return
        if self.sender is None:
            self.sender = threading.Thread(target=self._deliver_all, name="tunelab-webhooks", daemon=True)
            self.sender.start()
        self.outbox.put(job_event(status, job_id))

    def close(self, wait_seconds: float = 5.0) -> None:
        """Let queued events go out for a few seconds at shutdown; the rest are dropped with the process."""
        deadline = time.time() + wait_seconds
        while not self.outbox.empty() and time.time() < deadline:
            time.sleep(0.1)

    def _deliver_all(self) -> None:
        while True:
            self._deliver(self.outbox.get())

    def _deliver(self, event: dict) -> bool:
        import httpx

        body, wait = json.dumps(event), FIRST_WAIT_SECONDS
        for attempt in range(1, ATTEMPTS + 1):
            headers = signed_headers(event["id"], body, self.secret or "", int(time.time()))
            try:
                if httpx.post(self.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS).is_success:
                    return True
            except httpx.HTTPError:
                pass
            if attempt < ATTEMPTS:
                time.sleep(wait)
                wait *= 2
        return False
