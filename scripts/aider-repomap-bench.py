#!/usr/bin/env python3
"""Aider's repository map on the cases of ACAS's context recall bench, side by side.

Usage:
    cargo bench -p acas --bench context_recall -- --cases 60 --step 2 --export /tmp/cases.json
    ~/.cache/acas-bench/aider/bin/python scripts/aider-repomap-bench.py /tmp/cases.json

Aider (`aider-chat` from PyPI) lives in a venv of its own outside the repository:
    python3 -m venv ~/.cache/acas-bench/aider && ~/.cache/acas-bench/aider/bin/pip install aider-chat

For each case exported by the bench (a file A whose line calls a function defined only in other
files B; the line broken by removing its last character), every project is copied to a temporary
directory (Aider writes its tag cache into the root), the broken text is written to A, and
`aider.repomap.RepoMap` is asked, with A as the chat file, every other source file of the project
as the other files and the identifiers on the broken line as the mentioned identifiers (as when
the user pastes the line into the chat), for its map at 1,024 and 2,048 tokens and at ACAS's
median prompt size for that language. A case is recalled when the map shows, under one of the B
files, the line where the callee is defined. Tokens are counted with ACAS's estimate (bytes / 4,
rounded up) for both, through a stand-in for Aider's model object, so that no key, network or
tokenizer download is needed and both sides count alike.

Prints a Markdown table: per language and size, recall and median map tokens, next to ACAS's
recall and median prompt tokens.
"""

import json
import os
import re
import shutil
import statistics
import sys
import tempfile

from aider.io import InputOutput
from aider.repomap import RepoMap


class EstimatingModel:
    """What RepoMap asks of a model: a token count. ACAS's estimate, so both sides count alike."""

    def token_count(self, text):
        if not isinstance(text, str):
            text = json.dumps(text)
        return (len(text.encode("utf-8")) + 3) // 4


EXTENSIONS = {"rust": (".rs",), "python": (".py",), "typescript": (".ts", ".tsx")}
SKIP_DIRS = {"tests", "test", "benches", "examples", "node_modules", "dist"}
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def source_files(root, language):
    out = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".aider")]
        for name in files:
            if name.endswith(EXTENSIONS[language]) and not name.endswith(".d.ts"):
                out.append(os.path.join(directory, name))
    return sorted(out)


def blocks(repo_map):
    """The map's lines under each file it names: `path:` at column 0 opens a file's block."""
    by_file, current = {}, None
    for line in (repo_map or "").splitlines():
        if line.endswith(":") and not line.startswith(("│", "⋮", " ", "\t")):
            current = line[:-1]
            by_file.setdefault(current, [])
        elif current is not None:
            by_file[current].append(line.lstrip("│").strip())
    return by_file


def recalled(repo_map, case, copy):
    shown = blocks(repo_map)
    for definition in case["definitions"]:
        lines = shown.get(definition["path"])
        if not lines:
            continue
        with open(os.path.join(copy, definition["path"]), encoding="utf-8", errors="replace") as f:
            text = f.read().splitlines()
        wanted = text[definition["line"] - 1].strip() if definition["line"] <= len(text) else None
        if wanted and wanted in lines:
            return True
    return False


def main():
    cases = json.load(open(sys.argv[1]))
    io = InputOutput(pretty=False, yes=True, fancy_input=False)
    model = EstimatingModel()
    rows = []
    work = tempfile.mkdtemp(prefix="aider-bench-")
    try:
        for language in ("rust", "python", "typescript"):
            data = cases.get(language)
            if not data:
                continue
            acas_tokens = data["median_tokens"]
            sizes = [1024, 2048, acas_tokens]
            results = {size: ([], []) for size in sizes}
            copies, maps = {}, {}
            for case in data["cases"]:
                root = case["root"]
                if root not in copies:
                    copy = os.path.join(work, f"{language}-{len(copies)}")
                    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".aider*"))
                    copies[root] = copy
                    maps[root] = {
                        size: RepoMap(map_tokens=size, root=copy, main_model=model, io=io, refresh="always")
                        for size in sizes
                    }
                copy = copies[root]
                path = os.path.join(copy, case["file"])
                with open(path, encoding="utf-8") as f:
                    original = f.read()
                lines = original.split("\n")
                broken_line = lines[case["line"] - 1]
                lines[case["line"] - 1] = broken_line[:-1]
                with open(path, "w", encoding="utf-8") as f:
                    f.write("\n".join(lines))
                try:
                    others = [p for p in source_files(copy, language) if p != path]
                    idents = set(IDENT.findall(broken_line))
                    for size in sizes:
                        repo_map = maps[root][size].get_repo_map([path], others, mentioned_idents=idents)
                        hits, tokens = results[size]
                        hits.append(recalled(repo_map, case, copy))
                        tokens.append(model.token_count(repo_map or ""))
                finally:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(original)
            n = len(data["cases"])
            acas_recall = sum(c["acas_recalled"] for c in data["cases"]) / n
            for size in sizes:
                hits, tokens = results[size]
                label = f"{size:,}" + (" (ACAS's median)" if size == acas_tokens else "")
                rows.append(
                    f"| {language} | {n} | {label} | {sum(hits) / n:.2f} | {int(statistics.median(tokens)):,} "
                    f"| {acas_recall:.2f} | {acas_tokens:,} |"
                )
            print(f"{language}: done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| language | cases | Aider map size asked | Aider recall | Aider median tokens | ACAS recall | ACAS median tokens |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
