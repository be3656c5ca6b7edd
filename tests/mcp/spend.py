"""Two agents ask `explain` under per-agent spend limits: drives `acas mcp` with the official MCP
Python SDK, first as `agent-a` (twice), then as `agent-b`.

Run by tests/tests/explain.rs: `python spend.py ACAS WORKSPACE`. It prints one JSON object of
the answers on its last line of stdout.
"""

import asyncio
import json
import os
import sys

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

QUESTION = {"path": "src/shapes.rs", "line": 6}


async def explain_as(acas, workspace, name, times):
    env = dict(os.environ, ACAS_LOG="warn")
    params = StdioServerParameters(command=acas, args=["mcp", workspace], env=env)
    answers = []
    async with Client(params, client_info=types.Implementation(name=name, version="1")) as client:
        for _ in range(times):
            try:
                result = await client.call_tool("explain", QUESTION)
                answers.append({"ok": True, "cost_usd": result.structured_content["cost_usd"]})
            except MCPError as error:
                answers.append({"ok": False, "message": error.error.message})
    return answers


async def main():
    acas, workspace = sys.argv[1], sys.argv[2]
    seen = {
        "a": await explain_as(acas, workspace, "agent-a", 2),
        "b": await explain_as(acas, workspace, "agent-b", 1),
    }
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
