#!/usr/bin/env python3
"""Usage: bench-startup.py HISTORY_RUNS TIMED_RUNS BINARY...
One workspace per binary with a one-step workflow and HISTORY_RUNS runs already in .acas/state.db
(keep_runs raised so none is pruned); then TIMED_RUNS runs of `acas workflow run hello` per
binary, interleaved, each timed on its own (wall clock). Prints median, p90 and mean in ms."""
import os, shutil, statistics, subprocess, sys, tempfile, time

history, timed, binaries = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
spaces = {}
for acas in binaries:
    ws = tempfile.mkdtemp()
    os.makedirs(f"{ws}/.acas/workflows")
    open(f"{ws}/.acas/workflows/hello.yaml", "w").write('name: hello\nsteps:\n  - id: say\n    run: ["true"]\n')
    open(f"{ws}/.acas/config.toml", "w").write("[workflows]\nkeep_runs = 100000\n")
    for _ in range(history):
        subprocess.run([acas, "workflow", "run", "hello"], cwd=ws, check=True, stdout=subprocess.DEVNULL)
    spaces[acas] = ws
times = {acas: [] for acas in binaries}
for _ in range(timed):
    for acas in binaries:
        start = time.perf_counter()
        subprocess.run([acas, "workflow", "run", "hello"], cwd=spaces[acas], check=True, stdout=subprocess.DEVNULL)
        times[acas].append((time.perf_counter() - start) * 1000)
for acas in binaries:
    t = sorted(times[acas])
    size = os.path.getsize(f"{spaces[acas]}/.acas/state.db")
    print(f"{os.path.basename(acas)}: history {history}, state.db {size} bytes, {timed} runs: "
          f"median {statistics.median(t):.1f} ms, p90 {t[int(len(t) * 0.9)]:.1f} ms, mean {statistics.mean(t):.1f} ms")
    shutil.rmtree(spaces[acas])
