"""An editor inside a workflow step: starts `acas serve`, opens FILE, asks `acas.escalate` on its
first diagnostic and prints the params of `acas/escalationDone` as one JSON object on its last
line of stdout.

Run by a step in tests/tests/policy_spend.rs: `python3 escalate.py ACAS WORKSPACE FILE`. Only the
standard library: LSP messages framed with `Content-Length` over the server's stdio.
"""

import json
import os
import subprocess
import sys
import threading
import queue

WAIT = 60


def main():
    acas, workspace, rel = sys.argv[1], sys.argv[2], sys.argv[3]
    env = dict(os.environ, ACAS_LOG="warn")
    server = subprocess.Popen([acas, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    incoming = queue.Queue()

    def read():
        while True:
            length = None
            while True:
                line = server.stdout.readline()
                if not line:
                    incoming.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            incoming.put(json.loads(server.stdout.read(length)))

    threading.Thread(target=read, daemon=True).start()
    next_id = [0]

    def send(message):
        body = json.dumps(message).encode()
        server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        server.stdin.flush()

    def request(method, params):
        next_id[0] += 1
        send({"jsonrpc": "2.0", "id": next_id[0], "method": method, "params": params})
        return next_id[0]

    def expect(what, predicate):
        while True:
            message = incoming.get(timeout=WAIT)
            if message is None:
                sys.exit(f"the server ended while waiting for {what}")
            if "id" in message and "method" in message:
                # A request of the server's: an empty success.
                send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            if predicate(message):
                return message

    root_uri = "file://" + os.path.abspath(workspace)
    uri = root_uri + "/" + rel
    first = request("initialize", {"processId": os.getpid(), "rootUri": root_uri, "capabilities": {}})
    expect("initialize", lambda m: m.get("id") == first)
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    with open(os.path.join(workspace, rel)) as file:
        text = file.read()
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen",
          "params": {"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}})
    published = expect("diagnostics", lambda m: m.get("method") == "textDocument/publishDiagnostics"
                       and m["params"]["uri"] == uri and m["params"]["diagnostics"])
    diagnostic = published["params"]["diagnostics"][0]
    asked = request("workspace/executeCommand",
                    {"command": "acas.escalate", "arguments": [{"uri": uri, "range": diagnostic["range"]}]})
    handle = expect("the escalation's handle", lambda m: m.get("id") == asked)
    if "error" in handle:
        print(json.dumps({"error": handle["error"]}))
    else:
        escalation = handle["result"]["escalationId"]
        done = expect("the escalation's end", lambda m: m.get("method") == "acas/escalationDone"
                      and m["params"]["escalationId"] == escalation)
        print(json.dumps(done["params"]))
    last = request("shutdown", None)
    expect("shutdown", lambda m: m.get("id") == last)
    send({"jsonrpc": "2.0", "method": "exit"})
    server.wait(timeout=WAIT)


if __name__ == "__main__":
    main()
