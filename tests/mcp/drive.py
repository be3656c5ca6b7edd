"""Drives `acas mcp` with the official MCP Python SDK, as an agent would.

Run by tests/tests/mcp.rs: `python drive.py SCENARIO ACAS WORKSPACE`, with XDG_CONFIG_HOME set to a
directory of the test's. SCENARIO is `stdio` or `http`. Prints one JSON object of what it saw on its
last line of stdout; asserts what a client must see along the way and exits non-zero, saying what
was wrong, when it does not.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import warnings

import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from common import WAIT, error_of, expect, until

# The server speaks the handshake protocol versions, where resources/subscribe is the way.
warnings.filterwarnings("ignore", message="resources/subscribe is removed")

TOOLS = {"check", "problems", "context", "explain", "workflows", "run_workflow", "run_status", "activity"}
INVALID_PARAMS = -32602
# Written by tests/tests/mcp.rs into leak.py and a commit subject.
SECRETS = ["AKIAIOSFODNN7EXAMPLE", "Zq8rT2mLw9vBn4Ks"]




async def scenario(client, acas, workspace, seen, updates):
    tools = await client.list_tools()
    names = {t.name for t in tools.tools}
    expect(TOOLS <= names, f"tools listed: {sorted(names)}")
    for t in tools.tools:
        expect(t.input_schema.get("type") == "object", f"{t.name} has an object schema: {t.input_schema}")
    seen["tools"] = sorted(names)

    # check: one file, then the whole workspace.
    result = await client.call_tool("check", {"paths": ["broken.py"]})
    data = result.structured_content
    expect(data["errors"] >= 1, f"check broken.py finds its syntax error: {data}")
    first = data["diagnostics"][0]
    expect(first["path"] == "broken.py" and first["line"] == 1, f"the error is located: {first}")
    expect("broken.py:1:" in result.content[0].text, f"the text names it: {result.content[0].text}")
    fingerprint = first["fingerprint"]
    seen["check_errors"] = data["errors"]
    whole = (await client.call_tool("check", {})).structured_content
    expect(whole["files_checked"] >= 2, f"the whole workspace is checked: {whole}")
    clean = (await client.call_tool("check", {"paths": ["good.py"]})).structured_content
    expect(clean["errors"] == 0 and clean["diagnostics"] == [], f"good.py is clean: {clean}")
    # A workspace the user never trusted runs no workflow for an agent (once trusted, below, it
    # does), and no checker.
    untrusted = await error_of(client, "run_workflow", {"workflow": "hello", "inputs": {"who": "agent"}})
    expect((untrusted.data or {}).get("kind") == "workspace_untrusted" and "acas trust" in untrusted.message,
           f"an untrusted workspace runs no workflow for an agent: {untrusted}")
    # The project's checkers run its own code: not before the user trusted the workspace.
    untrusted = await error_of(client, "check", {"paths": ["good.py"], "checkers": True})
    expect("acas trust" in untrusted.message, f"an untrusted workspace says how to trust it: {untrusted.message}")
    subprocess.run([acas, "trust", workspace], check=True, capture_output=True)
    # With the project's checkers (as `acas check --checkers`): the report says which ran.
    with_checkers = (await client.call_tool("check", {"paths": ["good.py"], "checkers": True})).structured_content
    expect(isinstance(with_checkers.get("checkers"), list), f"the checkers' runs are reported: {with_checkers}")

    # problems: what the workspace recorded, once its scan has.
    async def recorded():
        result = await client.call_tool("problems", {})
        listed = [p for ps in result.structured_content["by_category"].values() for p in ps]
        return result if any(p["fingerprint"] == fingerprint for p in listed) else None

    problems = await until("the syntax error to be recorded as a problem", recorded)
    syntax = problems.structured_content["by_category"].get("syntax", [])
    expect(syntax and syntax[0]["first_seen"] and syntax[0]["occurrences"] >= 1, f"history: {syntax}")
    seen["problems"] = problems.structured_content["total"]

    # context: by file and line, and by fingerprint, within the budget.
    context = (await client.call_tool("context", {"path": "broken.py", "line": 1, "max_tokens": 400})).structured_content
    expect("def g(" in context["context"], f"the context holds the code: {context['context']}")
    expect(context["estimated_tokens"] <= 400, f"within the budget: {context['estimated_tokens']}")
    expect("sk-ant-" not in context["context"], "the secret in broken.py is redacted")
    by_fingerprint = (await client.call_tool("context", {"fingerprint": fingerprint})).structured_content
    expect(by_fingerprint["path"] == "broken.py", f"the fingerprint names the file: {by_fingerprint}")
    seen["context_tokens"] = context["estimated_tokens"]

    # explain: no provider is configured, and the error says how to add one.
    error = await error_of(client, "explain", {"path": "broken.py", "line": 1})
    expect("no AI provider is configured" in error.message and "[[providers]]" in error.message, error.message)
    seen["explain_error"] = error.message

    # workflows: list, run, follow (by polling and by subscription to the run's resource).
    listed = (await client.call_tool("workflows", {})).structured_content
    expect([w["name"] for w in listed["workflows"]] == ["hello"], f"workflows: {listed}")
    expect(listed["workflows"][0]["inputs"]["who"]["type"] == "string", f"inputs: {listed}")
    started = (await client.call_tool("run_workflow", {"workflow": "hello", "inputs": {"who": "agent"}})).structured_content
    run = started["run"]

    async def finished():
        status = (await client.call_tool("run_status", {"run": run})).structured_content
        return status if status["final"] else None

    status = await until(f"run {run} to end", finished)
    expect(status["status"] == "succeeded", f"the run succeeded: {status}")
    expect([s["id"] for s in status["steps"]] == ["greet"], f"its steps: {status}")
    resource = await client.read_resource(f"acas://runs/{run}")
    expect(json.loads(resource.contents[0].text)["status"] == "succeeded", f"the run's resource: {resource}")
    seen["run"] = status["status"]

    # A subscription fires on a change: a new broken file changes the problems.
    await client.subscribe_resource("acas://problems")
    with open(os.path.join(workspace, f"later_{seen['scenario']}.py"), "w") as f:
        f.write("def later(:\n    pass\n")
    await until("notifications/resources/updated for acas://problems", lambda: _has(updates, "acas://problems"))
    problems_now = json.loads((await client.read_resource("acas://problems")).contents[0].text)
    expect(
        any(l["path"] == f"later_{seen['scenario']}.py" for p in problems_now["problems"] for l in p["locations"]),
        f"the resource shows the new problem: {problems_now}",
    )
    seen["subscription"] = "fired"

    # activity: the git history (who committed what) and this agent's own calls.
    activity = (await client.call_tool("activity", {"limit": 200})).structured_content
    commits = activity["git"]["commits"]
    expect(commits and commits[0]["author"] == "Ada Lovelace" and "good.py" in commits[0]["files"], f"git: {activity['git']}")
    agent_rows = [r for r in activity["activity"] if r["kind"] == "agent"]
    expect(any(r["action"] == "check" and r["detail"].startswith("drive-test:") for r in agent_rows), f"the agent's calls are recorded: {agent_rows}")
    seen["agent_rows"] = len(agent_rows)

    # Secrets that diagnostics and commit subjects quote are redacted in everything the agent's
    # model is handed, not only in `context`.
    handed = []
    for tool, arguments in [("check", {"paths": ["leak.py"]}), ("problems", {}), ("activity", {"limit": 200})]:
        result = await client.call_tool(tool, arguments)
        handed.append(result.content[0].text + json.dumps(result.structured_content))
    handed.append((await client.read_resource("acas://problems")).contents[0].text)
    leaked = [s for s in SECRETS for text in handed if s in text]
    expect(not leaked, f"secrets handed to the agent: {leaked}")
    expect(any("[REDACTED" in text for text in handed), f"the secrets are marked as removed: {handed}")
    seen["secrets_handed"] = len(leaked)

    # Bad arguments: MCP errors (invalid params) a model can act on.
    bad = {
        "paths not a list": ("check", {"paths": "broken.py"}),
        "unknown argument": ("check", {"bogus": 1}),
        "outside the workspace": ("check", {"paths": ["../outside.py"]}),
        "missing file": ("check", {"paths": ["nope.py"]}),
        "limit 0": ("problems", {"limit": 0}),
        "no error named": ("context", {}),
        "both ways": ("context", {"path": "broken.py", "line": 1, "fingerprint": fingerprint}),
        "line on no diagnostic": ("context", {"path": "good.py", "line": 1}),
        "budget too small": ("context", {"path": "broken.py", "line": 1, "max_tokens": 5}),
        "unknown workflow": ("run_workflow", {"workflow": "nope"}),
        "unknown run": ("run_status", {"run": 987654}),
        "unknown checker": ("check", {"paths": ["good.py"], "checker_names": ["nope"]}),
        "bad duration": ("activity", {"since": "soon"}),
    }
    messages = {}
    for label, (tool, arguments) in bad.items():
        error = await error_of(client, tool, arguments)
        expect(error.code == INVALID_PARAMS, f"{label}: code {error.code}, {error.message}")
        messages[label] = error.message
    expect("outside the workspace" in messages["outside the workspace"], messages["outside the workspace"])
    expect("`workflows` lists" in messages["unknown workflow"], messages["unknown workflow"])
    expect("between 200 and" in messages["budget too small"], messages["budget too small"])
    expect("no checker named `nope`" in messages["unknown checker"], messages["unknown checker"])
    seen["bad_arguments"] = len(messages)


async def _has(updates, uri):
    return uri in updates


def collector(updates):
    async def handle(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.add(str(message.params.uri))

    return handle


async def stdio(acas, workspace):
    seen = {"scenario": "stdio"}
    updates = set()
    env = dict(os.environ, ACAS_LOG="warn")
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        env.pop(key, None)
    params = StdioServerParameters(command=acas, args=["mcp", workspace], env=env)
    async with Client(
        params,
        client_info=types.Implementation(name="drive-test", version="1"),
        message_handler=collector(updates),
    ) as client:
        await scenario(client, acas, workspace, seen, updates)
    return seen


def post(url, headers):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(
        {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}, **headers))
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def http(acas, workspace):
    seen = {"scenario": "http"}
    updates = set()
    env = dict(os.environ, ACAS_LOG="warn")
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        env.pop(key, None)
    token = subprocess.run([acas, "mcp", "--print-token"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    expect(re.fullmatch(r"[0-9a-f]{64}", token), f"the token: {token!r}")
    token_file = os.path.join(env["XDG_CONFIG_HOME"], "acas", "mcp-token")
    expect(os.stat(token_file).st_mode & 0o777 == 0o600, f"the token file is 0600: {oct(os.stat(token_file).st_mode)}")
    server = subprocess.Popen([acas, "mcp", "--http", "--port", "0", workspace], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/mcp", line)
        expect(found, f"the server says where it listens: {line!r}")
        url = found.group(0)
        status, body = post(url, {})
        expect(status == 401 and "missing bearer token" in body and "--print-token" in body, f"no token: {status} {body}")
        status, body = post(url, {"Authorization": "Bearer " + "0" * 64})
        expect(status == 401 and "wrong bearer token" in body, f"wrong token: {status} {body}")
        status, body = post(url, {"Authorization": "Basic " + token})
        expect(status == 401, f"not a bearer token: {status} {body}")
        seen["unauthorized"] = 401
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      timeout=httpx2.Timeout(30, read=300)) as http_client:
            async with Client(
                streamable_http_client(url, http_client=http_client),
                client_info=types.Implementation(name="drive-test", version="1"),
                message_handler=collector(updates),
            ) as client:
                await scenario(client, acas, workspace, seen, updates)
    finally:
        server.terminate()
        try:
            server.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return seen


def main():
    which, acas, workspace = sys.argv[1:4]
    seen = asyncio.run({"stdio": stdio, "http": http}[which](acas, workspace))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
