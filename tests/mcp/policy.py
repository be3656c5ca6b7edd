"""An agent under a policy: drives `acas mcp` with the official MCP Python SDK as `policy-agent`.

Run by tests/tests/policy.rs: `python policy.py ACAS WORKSPACE PORT`, with XDG_CONFIG_HOME set to a
directory of the test's; PORT is a local HTTP server of the test's. It starts the workspace's
workflows through `run_workflow`, answers the approvals they wait for with `acas approve` (another
process) and prints one JSON object of what it saw on its last line of stdout.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from common import WAIT, expect


def acas_cli(acas, workspace, *args):
    env = dict(os.environ, ACAS_LOG="warn")
    done = subprocess.run([acas, *args, "--workspace", workspace, "--format", "json"], env=env,
                          capture_output=True, text=True, timeout=WAIT)
    return done.returncode, done.stdout, done.stderr


async def answer_next(acas, workspace, deny=False):
    """Waits for one pending approval and answers it from another process; returns it."""
    deadline = time.monotonic() + WAIT
    while True:
        code, out, err = await anyio.to_thread.run_sync(lambda: acas_cli(acas, workspace, "approve"))
        expect(code == 0, f"acas approve lists: {code} {out} {err}")
        pending = json.loads(out)["pending"]
        if pending:
            break
        expect(time.monotonic() < deadline, "no approval became pending")
        await anyio.sleep(0.05)
    first = pending[0]
    args = ["approve", str(first["id"])] + (["--deny"] if deny else [])
    code, out, err = await anyio.to_thread.run_sync(lambda: acas_cli(acas, workspace, *args))
    expect(code == 0, f"acas approve {first['id']}: {code} {out} {err}")
    return first


async def run_to_end(client, workflow):
    started = await client.call_tool("run_workflow", {"workflow": workflow})
    run = started.structured_content["run"]
    deadline = time.monotonic() + WAIT
    while True:
        state = (await client.call_tool("run_status", {"run": run})).structured_content
        if state["final"]:
            return state
        expect(time.monotonic() < deadline, f"run {run} of {workflow} did not end: {state}")
        await anyio.sleep(0.05)


def step_error(state):
    return " ".join(s["error"] or "" for s in state["steps"])


async def scenario(client, acas, workspace):
    seen = {}
    # Workflows the agent may not start at all.
    try:
        await client.call_tool("run_workflow", {"workflow": "nuke"})
        raise AssertionError("nuke started")
    except MCPError as error:
        seen["nuke"] = error.error.message

    # Paths.
    seen["write_ok"] = (await run_to_end(client, "write-ok"))["status"]
    denied = await run_to_end(client, "write-denied")
    seen["write_denied"] = [denied["status"], step_error(denied)]
    async with anyio.create_task_group() as tg:
        result = {}

        async def go():
            result["state"] = await run_to_end(client, "write-approve")

        tg.start_soon(go)
        asked = await answer_next(acas, workspace, deny=True)
    seen["write_approve"] = [asked["action"], result["state"]["status"], step_error(result["state"])]

    # Commands.
    seen["cmd_ok"] = (await run_to_end(client, "cmd-ok"))["status"]
    denied = await run_to_end(client, "cmd-denied")
    seen["cmd_denied"] = [denied["status"], step_error(denied)]
    async with anyio.create_task_group() as tg:
        result = {}

        async def go():
            result["state"] = await run_to_end(client, "cmd-approve")

        tg.start_soon(go)
        asked = await answer_next(acas, workspace)
    seen["cmd_approve"] = [asked["action"], result["state"]["status"]]

    # Hosts.
    seen["host_ok"] = (await run_to_end(client, "host-ok"))["status"]
    denied = await run_to_end(client, "host-denied")
    seen["host_denied"] = [denied["status"], step_error(denied)]
    async with anyio.create_task_group() as tg:
        result = {}

        async def go():
            result["state"] = await run_to_end(client, "host-approve")

        tg.start_soon(go)
        asked = await answer_next(acas, workspace, deny=True)
    seen["host_approve"] = [asked["action"], result["state"]["status"], step_error(result["state"])]

    # A workflow that needs a person's approval before it starts: the call waits for it.
    async with anyio.create_task_group() as tg:
        result = {}

        async def go():
            result["state"] = await run_to_end(client, "ship")

        tg.start_soon(go)
        asked = await answer_next(acas, workspace)
    seen["ship"] = [asked["action"], result["state"]["status"]]
    return seen


async def main():
    acas, workspace = sys.argv[1], sys.argv[2]
    env = dict(os.environ, ACAS_LOG="warn")
    params = StdioServerParameters(command=acas, args=["mcp", workspace], env=env)
    async with Client(params, client_info=types.Implementation(name="policy-agent", version="1")) as client:
        seen = await scenario(client, acas, workspace)
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main())
