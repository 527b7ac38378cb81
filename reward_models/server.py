"""Serve any reward over HTTP, so that a reward living in another environment or on another GPU
(a GenEval detector, an OCR model, a VLM judge) can score a training run's images.

    GET  /health   -> {"status": "ok", "reward": NAME, "max_images": ..., "max_side": ...}
    POST /score    -> {"scores": [...]}; the body is a reward_models.wire request

One worker thread runs the reward: requests that arrive together are batched (up to
`max_batch` images, waiting at most `batch_window` seconds for more), moved to the server's
device and scored in one call, and each request gets its own slice back. Bad requests are
answered 400 (malformed), 401 (token), 411 (no length) or 413 (too large) and never reach the
reward; a reward that raises answers 500 with its message, and the server keeps serving.
Nothing is unpickled: images travel as a safetensors document, everything else as JSON.
The server binds to 127.0.0.1 by default; any other address needs a token.
"""

from __future__ import annotations

import hmac
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from reward_models.base import RewardFn, to_pil, wants_pil
from reward_models.combine import call_reward, check_reward_output
from reward_models.wire import Limits, WireError, decode_request

LOOPBACK = ("127.0.0.1", "localhost", "::1")
RESULT_TIMEOUT = 600.0
"""Longest a request waits for the worker before it is answered 503."""


@dataclass
class Job:
    """One request's images on their way through the worker."""

    images: torch.Tensor
    prompts: list[str]
    metadata: list[dict]
    done: threading.Event = field(default_factory=threading.Event)
    scores: list[float] | None = None
    error: str | None = None


class RewardService:
    """The batching worker around one reward callable (reward(images, prompts, metadata))."""

    def __init__(
        self,
        reward: RewardFn,
        name: str,
        limits: Limits | None = None,
        max_batch: int = 64,
        batch_window: float = 0.005,
        device: str | None = None,
    ) -> None:
        self.reward, self.name, self.limits = reward, name, limits or Limits()
        self.max_batch, self.batch_window = max_batch, batch_window
        self.device = torch.device(device) if device else None
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.batches = self.images = 0
        threading.Thread(target=self._work, daemon=True, name="reward-worker").start()

    def submit(self, job: Job) -> Job:
        """Queue a job and wait for its scores (or its error)."""
        self.jobs.put(job)
        if not job.done.wait(RESULT_TIMEOUT):
            job.error = f"no result within {RESULT_TIMEOUT:.0f} s"
        return job

    def _work(self) -> None:
        while True:
            batch = [self.jobs.get()]
            count, deadline = len(batch[0].prompts), time.monotonic() + self.batch_window
            while count < self.max_batch:
                try:
                    job = self.jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                batch.append(job)
                count += len(job.prompts)
            by_size: dict[tuple[int, int], list[Job]] = {}
            for job in batch:
                by_size.setdefault(tuple(job.images.shape[-2:]), []).append(job)
            for jobs in by_size.values():
                self._score(jobs)

    def _score(self, jobs: list[Job]) -> None:
        """Score jobs of one image size in one reward call; each gets its slice or the error."""
        try:
            images = torch.cat([job.images for job in jobs])
            if self.device is not None:
                images = images.to(self.device)
            prompts = [p for job in jobs for p in job.prompts]
            metadata = [m for job in jobs for m in job.metadata]
            inputs = to_pil(images) if wants_pil(self.reward) else images
            value = call_reward(self.name, self.reward, inputs, prompts, metadata)
            scores = check_reward_output(self.name, value, len(prompts), torch.device("cpu"))
            start = 0
            for job in jobs:
                job.scores = scores[start : start + len(job.prompts)].tolist()
                start += len(job.prompts)
            self.batches += 1
            self.images += len(prompts)
        except Exception as err:  # the reward's failure goes back to every caller
            for job in jobs:
                job.error = str(err)
        finally:
            for job in jobs:
                job.done.set()


def make_handler(service: RewardService, token: str | None) -> type[BaseHTTPRequestHandler]:
    """The request handler class of a server around `service`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib name
            """Quiet: the client reports failures; the server's log stays readable."""

        def _reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if token is None:
                return True
            given = self.headers.get("Authorization", "")
            return hmac.compare_digest(given, f"Bearer {token}")

        def do_GET(self) -> None:  # noqa: N802 - the stdlib name
            if self.path != "/health":
                self._reply(404, {"error": f"no such path {self.path}; try /health or /score"})
            elif not self._authorised():
                self._reply(401, {"error": "missing or wrong token"})
            else:
                limits = service.limits
                self._reply(200, {"status": "ok", "reward": service.name,
                                  "max_images": limits.max_images, "max_side": limits.max_side,
                                  "images_scored": service.images})  # fmt: skip

        def do_POST(self) -> None:  # noqa: N802 - the stdlib name
            if self.path != "/score":
                self.close_connection = True
                return self._reply(404, {"error": f"no such path {self.path}; POST /score"})
            if not self._authorised():
                self.close_connection = True
                return self._reply(401, {"error": "missing or wrong token"})
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                return self._reply(411, {"error": "a Content-Length header is required"})
            if int(length) > service.limits.max_body_bytes:
                self.close_connection = True  # the body is not read
                return self._reply(413, {"error": f"body of {length} bytes is too large"})
            try:
                images, prompts, metadata = decode_request(
                    self.rfile.read(int(length)), service.limits
                )
            except WireError as err:
                return self._reply(err.status, {"error": str(err)})
            job = service.submit(Job(images, prompts, metadata))
            if job.error is not None:
                return self._reply(500, {"error": job.error})
            return self._reply(200, {"scores": job.scores})

    return Handler


def serve(
    service: RewardService, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> ThreadingHTTPServer:
    """A started-to-be HTTP server for `service` (call serve_forever); port 0 picks a free one.
    Refuses an address other than loopback without a token."""
    if host not in LOOPBACK and not token:
        raise ValueError(
            f"--host {host} exposes the reward beyond this machine; give a --token (clients "
            "send it as 'Authorization: Bearer TOKEN'), or keep the default 127.0.0.1"
        )
    server = ThreadingHTTPServer((host, port), make_handler(service, token))
    server.daemon_threads = True
    return server


def announce(server: ThreadingHTTPServer, name: str) -> None:
    """Print the server's address (the first line; tests and scripts read the port there)."""
    host, port = server.server_address[:2]
    print(f"reward server for {name!r} listening on http://{host}:{port}", flush=True)
    print("  GET /health, POST /score; Ctrl-C stops it", file=sys.stderr, flush=True)
