"""Benchmark: latency of the MCP `check` tool on a file just changed, through the official SDK.

    python tests/mcp/bench_check.py target/release/acas [ROUNDS]

Makes a workspace of 200 Python files, starts `acas mcp` over stdio, then ROUNDS times (default
200): rewrites one 300-line file (alternately with and without a syntax error) and times the
`check` call on it, as an agent does after an edit. Prints the median, 90th, 95th and 99th percentiles
and the slowest, in milliseconds, for the whole round trip (client, JSON-RPC, server) and for the
server's part alone is not separated: the figures are what an agent waits.
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time

import mcp_types as types
from mcp import Client, StdioServerParameters


def body(broken, n):
    lines = [f"def f{i}(x):\n    return x + {i}\n" for i in range(150)]
    if broken:
        lines[n % 150] = f"def f{n % 150}(x:\n    return x\n"
    return "".join(lines)


async def main():
    acas = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with tempfile.TemporaryDirectory() as root:
        for i in range(200):
            with open(os.path.join(root, f"m{i}.py"), "w") as f:
                f.write(body(False, i))
        env = dict(os.environ, ACAS_LOG="warn", XDG_CONFIG_HOME=os.path.join(root, ".config"))
        params = StdioServerParameters(command=acas, args=["mcp", root], env=env)
        async with Client(params, client_info=types.Implementation(name="bench", version="1")) as client:
            await client.call_tool("check", {"paths": ["m0.py"]})
            times = []
            for n in range(rounds):
                with open(os.path.join(root, "m0.py"), "w") as f:
                    f.write(body(n % 2 == 0, n))
                start = time.perf_counter()
                result = await client.call_tool("check", {"paths": ["m0.py"]})
                times.append((time.perf_counter() - start) * 1000)
                expected = 1 if n % 2 == 0 else 0
                assert (result.structured_content["errors"] >= 1) == bool(expected), result.structured_content
            times.sort()
            q = statistics.quantiles(times, n=100)
            print(f"rounds {rounds}: median {statistics.median(times):.2f} ms, p90 {q[89]:.2f} ms, p95 {q[94]:.2f} ms, "
                  f"p99 {q[98]:.2f} ms, max {times[-1]:.2f} ms")


asyncio.run(main())
