"""What serving a reward over HTTP costs: throughput and latency of `t2i-gcpo reward-server`
under load, against calling the same reward in-process, on the same machine in the same run.

A reward server is started as its own process (`t2i-gcpo reward-server --port 0`). Then, for
--seconds each, interleaved in rounds so that load on the machine hits both alike:

    in-process   the reward object called directly on batches of --batch images
    remote       --clients threads, each a RemoteReward calling the server with batches of
                 --batch images (so up to clients x batch images wait to be batched together)

It prints images per second for both, their ratio, and the remote calls' latency (median and
95th percentile), and checks that the remote scores equal the in-process ones (float32 images
travel exactly). Rollout images are the shapes world's renders at its native size.

    python benchmarks/remote_reward.py                         # shapes CLIP, 2 minutes
    python benchmarks/remote_reward.py --reward shapes-aesthetic --seconds 30
    python benchmarks/remote_reward.py --precision uint8 --clients 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time

import torch

from reward_models import RemoteReward, load_reward
from t2i_gcpo.toy.scenes import random_scenes


def start_server(reward: str, max_batch: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "t2i_gcpo.cli", "reward-server", "--reward", reward,
               "--port", "0", "--max-batch", str(max_batch)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if "listening on" not in line:
        server.kill()
        raise SystemExit(f"the reward server did not start: {line!r}")
    return server, line.rsplit(" ", 1)[-1].strip()


def in_process(reward, images, prompts, metadata, seconds: float) -> tuple[int, float]:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        reward(images, prompts, metadata)
        done += len(images)
    return done, time.perf_counter() - start


def remote(url, images, prompts, metadata, seconds, clients, precision, failures: list[str]):
    """Images scored remotely in `seconds` by `clients` threads, the time taken and each call's
    latency. A call that raises is appended to `failures` (and ends its client): it is neither
    counted as images nor as a latency, and main() reports it."""
    latencies, counts, lock = [], [0], threading.Lock()

    def client() -> None:
        reward = RemoteReward(url, precision=precision, batch_size=len(images))
        while time.perf_counter() - start < seconds:
            t = time.perf_counter()
            try:
                reward(images, prompts, metadata)
            except Exception as err:  # noqa: BLE001 - any failure is reported, not hidden
                with lock:
                    failures.append(f"{type(err).__name__}: {err}")
                return
            with lock:
                latencies.append(time.perf_counter() - t)
                counts[0] += len(images)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts[0], time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reward", default="shapes-clip", help="a registered reward name")
    parser.add_argument("--seconds", type=float, default=120.0, help="load time per side")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=32, help="images per call")
    parser.add_argument("--clients", type=int, default=4, help="concurrent remote callers")
    parser.add_argument("--max-batch", type=int, default=128, help="the server's batch cap")
    parser.add_argument("--precision", default="float32", choices=("float32", "uint8"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    scenes = random_scenes(args.batch, seed=0, split="eval")
    images = torch.stack([scene.image for scene in scenes])
    prompts = [scene.prompt for scene in scenes]
    metadata = [scene.metadata for scene in scenes]
    reward = load_reward(args.reward)
    server, url = start_server(args.reward, args.max_batch)
    try:
        local_scores = reward(images, prompts, metadata)
        remote_scores = RemoteReward(url, precision=args.precision)(images, prompts, metadata)
        gap = (remote_scores - local_scores).abs().max().item()
        per_round = args.seconds / args.rounds
        local_n = local_t = remote_n = remote_t = 0.0
        latencies: list[float] = []
        failures: list[str] = []
        for _ in range(args.rounds):
            n, t = in_process(reward, images, prompts, metadata, per_round)
            local_n, local_t = local_n + n, local_t + t
            n, t, lat = remote(
                url, images, prompts, metadata, per_round, args.clients, args.precision, failures
            )
            remote_n, remote_t = remote_n + n, remote_t + t
            latencies += lat
    finally:
        server.terminate()
        server.wait(timeout=30)
    if not latencies:
        raise SystemExit(f"every remote call failed ({len(failures)}): {failures[:1]}")
    local_rate, remote_rate = local_n / local_t, remote_n / remote_t
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
    result = {
        "reward": args.reward,
        "images": list(images.shape),
        "precision": args.precision,
        "clients": args.clients,
        "batch": args.batch,
        "in_process_images_per_s": round(local_rate, 1),
        "remote_images_per_s": round(remote_rate, 1),
        "remote_over_in_process": round(remote_rate / local_rate, 3),
        "remote_latency_median_s": round(statistics.median(latencies), 4),
        "remote_latency_p95_s": round(p95, 4),
        "remote_calls": len(latencies),
        "remote_failed_calls": len(failures),
        "max_score_difference": gap,
    }
    print(json.dumps(result, indent=2))
    if failures:
        # A failed call ends its client, so the throughput above is that of fewer clients.
        raise SystemExit(f"{len(failures)} remote calls failed, the first: {failures[0]}")


if __name__ == "__main__":
    main()
