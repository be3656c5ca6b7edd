"""A workflow step that connects to `acas mcp` as `trusted-bot`: whatever name it gives, its calls
must be judged and recorded as the agent of the run it is a step of.

Run by a step of tests/tests/policy_runs.rs: `python inner_client.py ACAS WORKSPACE`. It asks to
start `inner` and to claim a task, and prints one JSON object of the answers on its last line.
"""

import asyncio
import json
import os
import sys

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError


async def main():
    acas, workspace = sys.argv[1], sys.argv[2]
    env = dict(os.environ, ACAS_LOG="warn")
    params = StdioServerParameters(command=acas, args=["mcp", workspace], env=env)
    seen = {}
    async with Client(params, client_info=types.Implementation(name="trusted-bot", version="1")) as client:
        try:
            started = await client.call_tool("run_workflow", {"workflow": "inner"})
            seen["run_workflow"] = {"ok": True, "data": started.structured_content}
        except MCPError as error:
            seen["run_workflow"] = {"ok": False, "message": error.error.message}
        claimed = await client.call_tool("task_claim", {})
        seen["claim"] = claimed.structured_content
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
