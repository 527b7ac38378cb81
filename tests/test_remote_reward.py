"""Remote rewards against a real `t2i-gcpo reward-server` process on the loopback interface."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from reward_models import CombinedReward, RemoteReward, RewardError
from reward_models.wire import Limits, WireError, decode_request, encode_request
from t2i_gcpo.cli import main

REWARDS = '''
import time

import torch


def bright(images, prompts, metadata):
    """Mean pixel value plus the prompt's length: a reward that reads every input."""
    return images.mean(dim=(1, 2, 3)) + torch.tensor([len(p) for p in prompts]) / 100


def slow(images, prompts, metadata):
    time.sleep(3.0)
    return images.mean(dim=(1, 2, 3))
'''


class Server:
    """A reward-server subprocess; its URL is read from the first line it prints."""

    def __init__(self, rewards: Path | None, reward: str, *extra: str) -> None:
        name = reward if rewards is None else f"{rewards}:{reward}"
        command = [sys.executable, "-m", "t2i_gcpo.cli", "reward-server", "--reward", name,
                   "--port", "0", *extra]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        line = self.process.stdout.readline()
        assert "listening on http://" in line, line
        self.url = line.split("listening on ")[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = json.loads(response.read() or b"{}")
        connection.close()
        return response.status, payload

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def rewards(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("remote") / "rewards.py"
    path.write_text(REWARDS)
    return path


@pytest.fixture(scope="module")
def server(rewards):
    served = Server(rewards, "bright", "--max-images", "16", "--max-side", "64")
    yield served
    served.stop()


def batch(n: int = 10, side: int = 16, seed: int = 0):
    images = torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))
    return images, [f"prompt {'x' * i}" for i in range(n)], [{"i": i} for i in range(n)]


def local_bright(images, prompts):
    return images.mean(dim=(1, 2, 3)) + torch.tensor([len(p) for p in prompts]) / 100


def test_remote_scores_equal_the_in_process_reward(server):
    images, prompts, metadata = batch()
    remote = RemoteReward(server.url, batch_size=3, max_in_flight=2)
    assert remote.server["reward"].endswith(":bright")
    assert torch.equal(remote(images, prompts, metadata), local_bright(images, prompts))
    rounded = RemoteReward(server.url, batch_size=4, precision="uint8")(images, prompts, metadata)
    expected = local_bright((images * 255).round() / 255, prompts)
    torch.testing.assert_close(rounded, expected)
    # through the loader and the checked weighted sum, as the trainer calls it
    combined = CombinedReward([{"name": "remote", "kwargs": {"url": server.url}}])
    assert torch.equal(combined(images, prompts, metadata).total, local_bright(images, prompts))


def test_the_server_rejects_bad_requests_and_keeps_serving(server):
    good = encode_request(*batch(2))
    assert server.request("POST", "/score", b"not a safetensors document")[0] == 400
    too_many = encode_request(*batch(17))
    status, payload = server.request("POST", "/score", too_many)
    assert status == 413 and "at most 16" in payload["error"]
    too_big = encode_request(*batch(2, side=96))
    assert server.request("POST", "/score", too_big)[0] == 413
    forged = good[:8] + good[8:].replace(b'"shape":[2,3,16,16]', b'"shape":[9,3,16,16]')
    assert server.request("POST", "/score", forged)[0] == 400  # bytes do not match the shape
    assert server.request("POST", "/nowhere", good)[0] == 404
    assert server.request("GET", "/health")[1]["status"] == "ok"
    status, payload = server.request("POST", "/score", good)
    assert status == 200 and len(payload["scores"]) == 2


def test_the_wire_checks_sizes_before_decoding():
    images, prompts, metadata = batch(3)
    body = encode_request(images, prompts, metadata)
    decoded, got_prompts, got_metadata = decode_request(body, Limits())
    assert torch.equal(decoded, images) and got_prompts == prompts and got_metadata == metadata
    with pytest.raises(WireError, match="at most 2") as err:
        decode_request(body, Limits(max_images=2))
    assert err.value.status == 413
    with pytest.raises(WireError, match="prompts must be a JSON list of 3"):
        decode_request(encode_request(images, prompts[:2], metadata), Limits())


def test_a_killed_server_is_retried_then_fails_clearly(rewards):
    served = Server(rewards, "bright")
    remote = RemoteReward(served.url, retries=2, backoff=0.2, timeout=5)
    images, prompts, metadata = batch(4)
    assert torch.equal(remote(images, prompts, metadata), local_bright(images, prompts))
    served.process.kill()
    served.process.wait()
    start = time.monotonic()
    with pytest.raises(RewardError, match=r"failed 3 times \(2 retries\).*Connection refused"):
        remote(images, prompts, metadata)
    assert time.monotonic() - start >= 0.2 * (0.5 + 1.0)  # backed off between the tries


def test_a_slow_server_times_out(rewards):
    served = Server(rewards, "slow")
    try:
        remote = RemoteReward(served.url, timeout=0.5, retries=1, backoff=0.0)
        with pytest.raises(RewardError, match="failed 2 times.*timed out"):
            remote(*batch(2))
        assert served.request("GET", "/health")[0] == 200  # the server lives on
    finally:
        served.stop()


class WrongCount(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        self._send({"status": "ok", "reward": "liar"})

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send({"scores": [1.0]})


def test_a_wrong_number_of_scores_is_an_error():
    fake = ThreadingHTTPServer(("127.0.0.1", 0), WrongCount)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        remote = RemoteReward(f"http://127.0.0.1:{fake.server_address[1]}")
        with pytest.raises(RewardError, match="sent 1 scores for 3 images"):
            remote(*batch(3))
    finally:
        fake.shutdown()


def test_health_is_checked_when_the_reward_is_built_and_tokens_are_enforced(rewards, capsys):
    with pytest.raises(RewardError, match="no reward server answers at http://127.0.0.1:9"):
        RemoteReward("http://127.0.0.1:9")
    served = Server(rewards, "bright", "--token", "s3cret")
    try:
        with pytest.raises(RewardError, match="answered 401"):
            RemoteReward(served.url)
        remote = RemoteReward(served.url, token="s3cret")
        images, prompts, metadata = batch(2)
        assert torch.equal(remote(images, prompts, metadata), local_bright(images, prompts))
    finally:
        served.stop()
    argv = ["reward-server", "--reward", f"{rewards}:bright", "--host", "0.0.0.0", "--port", "0"]
    assert main(argv) == 2
    assert "exposes the reward beyond this machine; give a --token" in capsys.readouterr().err


def test_shapes_world_training_through_a_reward_server_matches_in_process(tmp_path):
    served = Server(None, "shapes-clip")
    try:
        runs = {}
        for label, reward in (
            ("local", "[shapes-clip]"),
            ("remote", f"[{{name: remote, kwargs: {{url: '{served.url}'}}}}]"),
        ):
            out = tmp_path / label
            args = ["train", "--rewards.models", reward, "--prompts.eval", "null",
                    "--rollout.group_size", "4", "--rollout.prompts_per_step", "2",
                    "--optim.steps", "2", "--logging.output_dir", str(out),
                    "--logging.trackers", "none", "--logging.progress_bar", "false",
                    "--logging.sample_every", "0", "--logging.heatmap_every", "0"]  # fmt: skip
            assert main(args) == 0
            lines = (out / "metrics.jsonl").read_text().splitlines()
            runs[label] = [json.loads(line) for line in lines]
    finally:
        served.stop()
    local, remote = (torch.tensor([r["reward/mean"] for r in runs[k]]) for k in ("local", "remote"))
    assert len(local) == 2 and bool((local > 0).all())
    # the same images (float32 on the wire) through the same CLIP: equal up to float32 rounding
    torch.testing.assert_close(remote, local, rtol=1e-5, atol=0)
