"""An agent whose allowed workflow starts another with `acas workflow run`: drives `acas mcp` with
the official MCP Python SDK as `nested-agent`.

Run by tests/tests/policy_runs.rs: `python nested.py ACAS WORKSPACE WORKFLOW`. It starts WORKFLOW
through `run_workflow`, waits for its end and prints one JSON object of what it saw on its last
line of stdout.
"""

import asyncio
import json
import os
import sys
import time

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters

from common import WAIT, expect


async def main():
    acas, workspace, workflow = sys.argv[1], sys.argv[2], sys.argv[3]
    env = dict(os.environ, ACAS_LOG="warn")
    params = StdioServerParameters(command=acas, args=["mcp", workspace], env=env)
    async with Client(params, client_info=types.Implementation(name="nested-agent", version="1")) as client:
        started = await client.call_tool("run_workflow", {"workflow": workflow})
        run = started.structured_content["run"]
        deadline = time.monotonic() + WAIT
        while True:
            state = (await client.call_tool("run_status", {"run": run})).structured_content
            if state["final"]:
                break
            expect(time.monotonic() < deadline, f"run {run} did not end: {state}")
            await anyio.sleep(0.05)
    print(json.dumps(state))


if __name__ == "__main__":
    asyncio.run(main())
