"""What the MCP client scripts share: assertions and bounded waits on the server."""

import time

import anyio
from mcp.shared.exceptions import MCPError

WAIT = 30.0  # seconds: the bound of every wait on the server


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


async def error_of(client, tool, arguments):
    """The MCP error a call must give."""
    try:
        result = await client.call_tool(tool, arguments)
    except MCPError as error:
        return error.error
    raise AssertionError(f"{tool}({arguments}) succeeded but must fail: {result}")


async def until(what, probe):
    """Polls `probe` until it returns something truthy, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        found = await probe()
        if found:
            return found
        expect(time.monotonic() < deadline, f"timed out after {WAIT}s waiting for {what}")
        await anyio.sleep(0.05)
