"""The "remote" reward: score images with a reward served by `t2i-gcpo reward-server`.

    rewards.models: [{name: remote, kwargs: {url: "http://127.0.0.1:8765"}}]

The server is checked (GET /health) when the reward is built, with a message saying how to
start one when nothing answers. A call splits the images into requests of `batch_size`, sends
at most `max_in_flight` at once, and retries a request that fails for a reason worth retrying
(no connection, a timeout, a 5xx answer) `retries` times, waiting base * 2^attempt seconds
times a random factor in [0.5, 1.5] (exponential backoff with jitter, so that many clients do
not storm a recovering server). A request that still fails, an answer 4xx (the request itself
is wrong), or a wrong number of scores raises RewardError: the run stops with its checkpoint;
a failure is never turned into a score.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from reward_models.base import RewardError, RewardModel
from reward_models.registry import register_reward
from reward_models.wire import PRECISIONS, encode_request

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


@register_reward("remote")
class RemoteReward(RewardModel):
    """images (N, 3, H, W) in [0, 1], prompts, metadata -> the served reward's scores (N,).

    url: the server ("http://host:port"); timeout: seconds per request; retries: further tries
    of a failed request; batch_size: images per request; max_in_flight: concurrent requests;
    backoff: the first retry's base wait in seconds; token: sent as a bearer token when the
    server wants one; precision: "float32" (the images exactly, as an in-process reward sees
    them) or "uint8" (rounded to 8 bits like a PNG, 4 times smaller).
    """

    name = "remote"

    def __init__(
        self,
        url: str,
        timeout: float = 60.0,
        retries: int = 3,
        batch_size: int = 32,
        max_in_flight: int = 4,
        backoff: float = 0.5,
        token: str | None = None,
        precision: str = "float32",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url={url!r}; expected http://host:port")
        if timeout <= 0 or retries < 0 or backoff < 0 or batch_size < 1 or max_in_flight < 1:
            raise ValueError(
                f"remote reward: timeout={timeout} must be > 0, retries={retries} and "
                f"backoff={backoff} >= 0, batch_size={batch_size} and "
                f"max_in_flight={max_in_flight} >= 1"
            )
        self.url, self.timeout, self.retries = url.rstrip("/"), float(timeout), int(retries)
        self.batch_size, self.max_in_flight, self.backoff = batch_size, max_in_flight, backoff
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}; expected one of {tuple(PRECISIONS)}")
        self.precision = precision
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.rng = random.Random()
        self.server = self.health()

    # -- HTTP ------------------------------------------------------------------------------------

    def _open(self, request: urllib.request.Request) -> dict:
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())

    def health(self) -> dict:
        """GET /health; RewardError with how to start a server when none answers."""
        request = urllib.request.Request(f"{self.url}/health", headers=self.headers)
        try:
            return self._open(request)
        except urllib.error.HTTPError as err:
            raise RewardError(
                f"reward server at {self.url} answered {err.code}: {_body(err)}"
            ) from None
        except (OSError, ValueError) as err:
            raise RewardError(
                f"no reward server answers at {self.url} ({_reason(err)}); start one with "
                "`t2i-gcpo reward-server --reward NAME --port PORT` and give its address"
            ) from None

    def _post(self, body: bytes, count: int) -> list[float]:
        """POST one request, retrying what is worth retrying; its `count` scores."""
        failures = []
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * self.rng.uniform(0.5, 1.5))
            request = urllib.request.Request(
                f"{self.url}/score",
                data=body,
                headers={**self.headers, "Content-Type": "application/octet-stream"},
                method="POST",
            )
            try:
                scores = self._open(request).get("scores")
            except urllib.error.HTTPError as err:
                if err.code not in RETRYABLE_STATUS:
                    message = f"reward server at {self.url} refused the request ({err.code})"
                    raise RewardError(f"{message}: {_body(err)}") from None
                failures.append(f"{err.code} {_body(err)}")
                continue
            except (OSError, ValueError) as err:  # refused, reset, timed out, not JSON
                failures.append(_reason(err))
                continue
            if not isinstance(scores, list) or len(scores) != count:
                got = len(scores) if isinstance(scores, list) else type(scores).__name__
                raise RewardError(
                    f"reward server at {self.url} sent {got} scores for {count} images"
                )
            return scores
        raise RewardError(
            f"reward server at {self.url} failed {len(failures)} times "
            f"({self.retries} retries): {'; '.join(failures[-3:])}"
        )

    # -- the reward --------------------------------------------------------------------------------

    def __call__(
        self, images: torch.Tensor, prompts: Sequence[str], metadata: Sequence[dict]
    ) -> torch.Tensor:
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        metadata = list(metadata) if metadata is not None else [{} for _ in prompts]
        size, bodies = self.batch_size, []
        for s in range(0, len(images), size):
            chunk = slice(s, s + size)
            body = encode_request(
                images[chunk], list(prompts[chunk]), metadata[chunk], self.precision
            )
            bodies.append((body, len(images[chunk])))
        with ThreadPoolExecutor(max_workers=self.max_in_flight) as pool:
            parts = list(pool.map(lambda item: self._post(*item), bodies))
        scores = [score for part in parts for score in part]
        return torch.tensor(scores, dtype=torch.float32, device=images.device)


def _body(err: urllib.error.HTTPError) -> str:
    try:
        return json.loads(err.read()).get("error", "")
    except (OSError, ValueError, AttributeError):
        return ""


def _reason(err: Exception) -> str:
    reason = getattr(err, "reason", None)
    return f"{type(err).__name__}: {reason or err}"
