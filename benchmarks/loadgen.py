"""A load generator run in its own process: N requests at concurrency C against one URL path.

Prints one JSON object: count, errors, seconds, requests per second, p50/p90/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx


async def _run(url: str, token: str, paths: list[str], requests: int, concurrency: int, warmup: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        for i in range(warmup):
            await client.get(paths[i % len(paths)])
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                resp = await client.get(paths[i % len(paths)])
                latencies.append((time.perf_counter() - start) * 1000)
                if resp.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "count": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(q[49], 2),
        "p90_ms": round(q[89], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(latencies[-1], 2),
    }


def main() -> None:
    """Parse arguments, run the load, print the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--path", action="append", required=True, help="repeat to rotate over several paths")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(_run(args.url, args.token, args.path, args.requests, args.concurrency, args.warmup))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
