#!/usr/bin/env python3
"""A whole `acas explain FILE:LINE` against a local provider, next to `curl` of the same request.

Usage: bench-explain.py ACAS_BINARY [RUNS]

Makes a workspace from toml_edit 0.22.27's `src/` in `~/.cargo/registry` (44 files, a git
repository with one commit), breaks `src/document.rs` line 26 (its `)` removed), and starts a
local provider on 127.0.0.1 speaking OpenAI's wire format (`POST /v1/chat/completions`, a
streamed reply of a fixed answer, no fix, so nothing is verified). A first `acas explain` fills
the store (the symbol index) and gives the request body ACAS sends. Then RUNS rounds, each timing
(wall clock, the process started and waited for) one `acas explain src/document.rs:26` and one
`curl` POSTing that same body with the same headers to the same server; the answer cache is
emptied before each `acas explain` (through one connection held open for the whole run), so
every run asks the provider. Prints the median, p90 and
mean of each and the difference of the medians: what the `acas explain` process adds to the
provider's own time. Also prints the CPU time (user + system) of each process, which the load
of a shared machine changes much less than the wall clock.
"""

import glob
import http.server
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ANSWER = json.dumps({"explanation": "The call to `parse_document` is missing its closing parenthesis."})
KEY = "bench-key"


class Provider(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Provider.bodies.append(body)
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": ANSWER}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020}},
        ]
        payload = "".join(
            f"data: {json.dumps(dict(id='c', object='chat.completion.chunk', model='gpt-4o-mini', **c))}\n\n"
            for c in chunks
        ) + "data: [DONE]\n\n"
        data = payload.encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(data)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


def summary(times):
    t = sorted(times)
    return statistics.median(t), t[int(len(t) * 0.9)], statistics.mean(t)


def main():
    acas = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    source = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/toml_edit-0.22.27/src"))[0]
    ws = tempfile.mkdtemp(prefix="bench-explain-")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        shutil.copytree(source, f"{ws}/src")
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run(["git", "init", "-q", ws], check=True)
        subprocess.run(git + ["-C", ws, "add", "-A"], check=True)
        subprocess.run(git + ["-C", ws, "commit", "-qm", "toml_edit"], check=True)
        path = f"{ws}/src/document.rs"
        lines = open(path).read().split("\n")
        assert lines[25].endswith("parse_document(raw)"), lines[25]
        lines[25] = lines[25][:-1]
        open(path, "w").write("\n".join(lines))
        os.makedirs(f"{ws}/.acas")
        open(f"{ws}/.acas/config.toml", "w").write(
            f'[[providers]]\nname = "local"\nkind = "openai"\nbase_url = "{url}"\n'
            f'model = "gpt-4o-mini"\napi_key_env = "BENCH_KEY"\n'
        )
        env = dict(os.environ, BENCH_KEY=KEY)
        command = [acas, "explain", "src/document.rs:26"]

        def explain():
            subprocess.run(command, cwd=ws, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # One connection for the whole run: closing the last connection to a database moves
        # its write-ahead log into it and deletes it, which would make every `acas explain`
        # create the log again (with syncs) where, without this script, it finds it in place.
        db = sqlite3.connect(f"{ws}/.acas/state.db")

        def empty_cache():
            db.execute("DELETE FROM cache_entry")
            db.commit()

        start = time.perf_counter()
        explain()
        first = (time.perf_counter() - start) * 1000
        body_file = f"{ws}/body.json"
        open(body_file, "wb").write(Provider.bodies[-1])
        curl = [
            "curl", "-s", "-o", "/dev/null", "-X", "POST", f"{url}/chat/completions",
            "-H", "content-type: application/json", "-H", f"authorization: Bearer {KEY}",
            "--data-binary", f"@{body_file}",
        ]
        times = {"acas explain": [], "curl": []}
        cpu = {"acas explain": [], "curl": []}

        def children_cpu():
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return (usage.ru_utime + usage.ru_stime) * 1000

        for _ in range(runs):
            empty_cache()
            before = children_cpu()
            start = time.perf_counter()
            explain()
            times["acas explain"].append((time.perf_counter() - start) * 1000)
            cpu["acas explain"].append(children_cpu() - before)
            before = children_cpu()
            start = time.perf_counter()
            subprocess.run(curl, check=True)
            times["curl"].append((time.perf_counter() - start) * 1000)
            cpu["curl"].append(children_cpu() - before)
        asked = len(Provider.bodies) - 1
        assert asked == 2 * runs, f"the provider was asked {asked} times, not {2 * runs}"
        print(f"first `acas explain` (empty store: indexes and stores the symbol index): {first:.1f} ms")
        print(f"request body: {len(Provider.bodies[0])} bytes; {runs} rounds")
        for name, t in times.items():
            median, p90, mean = summary(t)
            print(f"{name}: median {median:.1f} ms, p90 {p90:.1f} ms, mean {mean:.1f} ms; "
                  f"CPU (user + system) median {statistics.median(cpu[name]):.1f} ms")
        overhead = statistics.median(times["acas explain"]) - statistics.median(times["curl"])
        print(f"`acas explain` adds {overhead:.1f} ms to curl at the median")
        db.close()
    finally:
        server.shutdown()
        shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
