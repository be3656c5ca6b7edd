#!/usr/bin/env python3
"""Prints the letter-bigram table the redactor uses to tell words from random letters.

Reads the English text of the files given (the table in the source was made from the README
files of the crates in a Cargo registry: `scripts/letter-bigrams.py ~/.cargo/registry/src/*/*/README.md`),
splits it into words of letters (at every other character and where a lower-case letter is
followed by a capital, as names are written), and counts, for each letter or word start, how
often each letter or word end follows it. Each cell is log2(P(next | letter) / (1/27)) in
quarter bits, rounded and clamped to -40..=40, with add-one smoothing: positive where the pair
is more common in words than among random letters.
"""
import math
import re
import sys

ALPHA = "^abcdefghijklmnopqrstuvwxyz"  # '^' is the start of a word as a row, its end as a column
counts = [[1] * 27 for _ in range(27)]
for path in sys.argv[1:]:
    try:
        text = open(path, encoding="utf-8", errors="ignore").read()
    except OSError:
        continue
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    for word in re.findall(r"[A-Za-z]+", text):
        word = word.lower()
        if len(word) < 2:
            continue
        prev = 0
        for ch in word:
            i = ALPHA.index(ch)
            counts[prev][i] += 1
            prev = i
        counts[prev][0] += 1
rows = []
for row in counts:
    total = sum(row)
    cells = [max(-40, min(40, round(4 * math.log2(c / total * 27)))) for c in row]
    rows.append("    [" + ", ".join(str(c) for c in cells) + "],")
print("\n".join(rows))
