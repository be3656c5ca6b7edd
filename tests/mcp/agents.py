"""Several agents share one repository through `acas mcp`, each its own MCP client (the official
Python SDK) and its own `acas mcp` process, as separate agents would run.

Run by tests/tests/mcp.rs: `python agents.py SCENARIO ACAS WORKSPACE`. SCENARIO is `two_agents`
(both ask for work and get different tasks, one cannot lock the other's paths, one stops
heartbeating and its task returns to the queue, a dependency finishing unblocks the next task,
every call is in the audit log) or `race` (several clients claim at once; no task is given
twice, no path locked twice; two clients of one name stay apart), `editor` or `shared` (the
team's queue on a shared store, from another clone). Prints one JSON object of what
it saw on its last line of stdout; exits non-zero, saying what was wrong, when a check fails.
"""

import asyncio
import json
import os
import subprocess
import sys
from contextlib import AsyncExitStack

import mcp_types as types
from mcp import Client, StdioServerParameters

from common import error_of, expect, until

INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SECRET = "sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA_2O76UMFxFkM"




async def call(client, tool, arguments):
    return (await client.call_tool(tool, arguments)).structured_content


def env():
    environment = dict(os.environ, ACAS_LOG="warn")
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        environment.pop(key, None)
    return environment


async def connect(stack, acas, workspace, name):
    params = StdioServerParameters(command=acas, args=["mcp", workspace], env=env())
    return await stack.enter_async_context(
        Client(params, client_info=types.Implementation(name=name, version="1"))
    )


def audit(acas, workspace):
    out = subprocess.run([acas, "audit", "--workspace", workspace, "--limit", "100000", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["records"]


async def two_agents(acas, workspace):
    seen = {}
    async with AsyncExitStack() as stack:
        a = await connect(stack, acas, workspace, "agent-a")
        b = await connect(stack, acas, workspace, "agent-b")
        tools = {t.name for t in (await a.list_tools()).tools}
        needed = {"task_create", "task_list", "task_show", "task_claim", "task_heartbeat", "task_done",
                  "task_fail", "task_release", "lock_list", "lock_add"}
        expect(needed <= tools, f"the task tools are listed: {sorted(tools)}")

        parser = (await call(a, "task_create", {"title": "Fix the parser", "type": "fix", "priority": 2,
                                                 "paths": ["src/parser/**"],
                                                 "description": f"the key {SECRET} must not be logged"}))["task"]
        docs = (await call(a, "task_create", {"title": "Write the docs", "type": "docs", "priority": 1,
                                               "paths": ["docs/**"]}))["task"]
        after = (await call(b, "task_create", {"title": "Speed up the lexer", "priority": 5,
                                                "paths": ["src/parser/lex.rs"], "needs": [parser["id"]]}))["task"]
        expect(after["state"] == "blocked", f"a task whose need is not done waits: {after}")
        expect(parser["source"] == "agent" and parser["created_by"].startswith("agent-a/"), f"its creator: {parser}")

        # Both ask for work and get different tasks.
        got_a = await call(a, "task_claim", {"ttl": "5m"})
        got_b = await call(b, "task_claim", {"ttl": "1s"})
        expect(got_a["claimed"] and got_b["claimed"], f"both got work: {got_a} {got_b}")
        expect(got_a["task"]["id"] == parser["id"], f"the highest priority with needs met: {got_a}")
        expect(got_b["task"]["id"] == docs["id"], f"the other agent gets another task: {got_b}")
        agent_a, agent_b = got_a["agent"], got_b["agent"]
        expect(agent_a.startswith("agent-a/") and agent_b.startswith("agent-b/"), f"{agent_a} {agent_b}")
        seen["claimed"] = [got_a["task"]["id"], got_b["task"]["id"]]

        # One cannot lock the other's paths: the error names the holder and when its lease ends.
        refused = await error_of(b, "lock_add", {"task": docs["id"], "globs": ["src/parser/lex.rs"]})
        expect(refused.code == INVALID_REQUEST, f"a refusal, not bad arguments: {refused.code} {refused.message}")
        expect((refused.data or {}).get("kind") == "conflict", f"its kind: {refused.data}")
        expect(agent_a in refused.message and "Fix the parser" in refused.message and "until" in refused.message,
               f"the refusal names the holder, its task and its lease: {refused.message}")
        seen["lock_refused"] = refused.message
        # Nor take the other's task by id.
        taken = await error_of(b, "task_claim", {"task": parser["id"]})
        expect((taken.data or {}).get("kind") == "conflict" and agent_a in taken.message, taken.message)
        locks = (await call(a, "lock_list", {}))["locks"]
        expect(sorted((l["glob"], l["agent"]) for l in locks) == sorted([("src/parser/**", agent_a), ("docs/**", agent_b)]),
               f"the locks held: {locks}")

        # B stops heartbeating: its task returns to the queue and its lock is freed.
        await call(a, "task_heartbeat", {"id": parser["id"], "ttl": "5m"})

        async def returned():
            task = (await call(a, "task_show", {"id": docs["id"]}))["task"]
            return task if task["state"] == "queued" and not task["locks"] else None

        back = await until("the silent agent's task to return to the queue", returned)
        seen["returned"] = back["state"]
        late = await error_of(b, "task_heartbeat", {"id": docs["id"]})
        expect((late.data or {}).get("kind") == "not_holder", f"a late heartbeat is refused: {late.data} {late.message}")

        # A finishes the parser: the lexer task is unblocked and is the next one given.
        done = await call(a, "task_done", {"id": parser["id"]})
        expect(done["unblocked"] == [after["id"]], f"finishing unblocks the task that needed it: {done}")
        shown = (await call(b, "task_show", {"id": after["id"]}))["task"]
        expect(shown["state"] == "queued", f"the unblocked task is queued: {shown}")
        next_b = await call(b, "task_claim", {})
        expect(next_b["claimed"] and next_b["task"]["id"] == after["id"], f"the unblocked task is given: {next_b}")
        seen["unblocked"] = after["id"]

        # Bad arguments are MCP errors a model can act on.
        bad_ttl = await error_of(a, "task_claim", {"ttl": "soon"})
        expect(bad_ttl.code == INVALID_PARAMS and "30s" in bad_ttl.message, bad_ttl.message)
        cycle = await error_of(a, "task_create", {"title": "x" * 201})
        expect(cycle.code == INVALID_PARAMS and "200" in cycle.message, cycle.message)
        escape = await error_of(a, "task_create", {"title": "escape", "paths": ["../outside/**"]})
        expect(escape.code == INVALID_PARAMS and ".." in escape.message, escape.message)
        missing = await error_of(a, "task_show", {"id": 987654})
        expect(missing.code == INVALID_PARAMS, missing.message)

    # Every tool call is in the hash chain, with the agent, its arguments summarised and the outcome.
    records = audit(acas, workspace)
    calls = [r for r in records if r["kind"] == "mcp_tool_call"]
    details = [r["detail"] for r in calls]
    expect(any(r["actor"] == agent_a and d["tool"] == "task_claim" and d["outcome"]["ok"] for r, d in zip(calls, details)),
           f"A's claim is recorded: {calls[:5]}")
    expect(any(r["actor"] == agent_b and d["tool"] == "lock_add" and d["outcome"]["kind"] == "conflict"
               for r, d in zip(calls, details)), "B's refused lock is recorded with its kind")
    expect(SECRET not in json.dumps(records), "no secret in the audit log")
    created = [d for d in details if d["tool"] == "task_create" and "description" in d["arguments"]]
    expect(created and created[0]["arguments"]["description"] == {"string_chars": len(f"the key {SECRET} must not be logged")},
           f"free text is summarised by its length: {created}")
    verify = subprocess.run([acas, "audit", "verify", "--workspace", workspace, "--format", "json"],
                            capture_output=True, text=True)
    expect(verify.returncode == 0, f"the chain verifies: {verify.stdout} {verify.stderr}")
    seen["tool_call_records"] = len(calls)
    return seen


async def race(acas, workspace):
    seen = {}
    clients = 4
    async with AsyncExitStack() as stack:
        agents = [await connect(stack, acas, workspace, f"racer-{i}") for i in range(clients)]
        # Six tasks, two pairs of which touch overlapping paths.
        paths = [["src/a/**"], ["src/a/x.py"], ["src/b"], ["src/b/**/*.py"], ["docs/one.md"], ["docs/two.md"]]
        for i, p in enumerate(paths):
            await call(agents[0], "task_create", {"title": f"task {i}", "paths": p})
        answers = await asyncio.gather(*(call(c, "task_claim", {}) for c in agents for _ in range(2)))
        got = [a["task"] for a in answers if a["claimed"]]
        ids = [t["id"] for t in got]
        expect(len(ids) == len(set(ids)), f"no task is given twice: {ids}")
        holders = {t["id"]: t["agent"] for t in got}
        # An agent's own locks never conflict; another agent's always do.
        for x, y in [(1, 2), (3, 4)]:
            if x in holders and y in holders:
                expect(holders[x] == holders[y], f"overlapping paths are locked by one agent only: {holders}")
        locks = (await call(agents[0], "lock_list", {}))["locks"]
        expect(len(locks) == sum(len(t["paths"]) for t in got), f"a lock per path claimed: {locks}")
        expect(len(got) >= 4, f"one of each overlapping pair and both others at least: {ids}")
        seen["claimed"] = len(got)

        # Two clients that give one name are two holders.
        same = [await connect(stack, acas, workspace, "same-name") for _ in range(2)]
        await call(agents[0], "task_create", {"title": "for the twins", "priority": 9})
        first = await call(same[0], "task_claim", {})
        expect(first["claimed"] and first["task"]["title"] == "for the twins", f"{first}")
        other = await error_of(same[1], "task_release", {"id": first["task"]["id"]})
        expect((other.data or {}).get("kind") == "not_holder" and first["agent"] in other.message,
               f"the other client of that name does not hold it: {other.message}")
        mine = await call(same[1], "task_list", {"mine": True})
        expect(mine["total"] == 0 and mine["agent"] != first["agent"], f"{mine}")
        seen["twins"] = [first["agent"], mine["agent"]]
    return seen


async def editor(acas, workspace):
    """The agent's half of one truth with an editor: the problem the editor's `acas serve` saw in an
    open buffer (the file is not on disk) is in `problems`; a task is made from it."""
    async with AsyncExitStack() as stack:
        agent = await connect(stack, acas, workspace, "editor-agent")

        async def seen_by_the_editor():
            problems = await call(agent, "problems", {})
            for group in problems["by_category"].values():
                for problem in group:
                    if any(l["path"] == "editor.py" for l in problem["locations"]):
                        return problem
            return None

        problem = await until("the editor's problem in `problems`", seen_by_the_editor)
        made = await call(agent, "task_create", {"from_problem": problem["fingerprint"], "priority": 4})
        expect(made["created"] and made["task"]["fingerprint"] == problem["fingerprint"], f"{made}")
        return {"fingerprint": problem["fingerprint"], "task": made["task"]["id"], "agent": made["task"]["created_by"]}


async def shared(acas, workspace):
    """An agent in one clone of a repository whose queue is on the shared store (ACAS_DATABASE_URL
    in the environment): it sees the task made in another clone, claims it and locks a path."""
    async with AsyncExitStack() as stack:
        agent = await connect(stack, acas, workspace, "shared-agent")
        listed = await call(agent, "task_list", {})
        expect(len(listed["tasks"]) == 1, f"the team's task is listed: {listed}")
        got = await call(agent, "task_claim", {"ttl": "5m"})
        expect(got["claimed"], f"the team's task is claimed: {got}")
        locked = await call(agent, "lock_add", {"task": got["task"]["id"], "globs": ["docs/**"]})
        expect(any(l["glob"] == "docs/**" for l in locked["task"]["locks"]), f"{locked}")
        return {"task": got["task"]["id"], "agent": got["task"]["agent"]}


def main():
    which, acas, workspace = sys.argv[1:4]
    runs = {"two_agents": two_agents, "race": race, "editor": editor, "shared": shared}
    seen = asyncio.run(runs[which](acas, workspace))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
