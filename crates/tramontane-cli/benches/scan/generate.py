#!/usr/bin/env python3
"""Writes a `git fast-import` stream for the `scan --history` benchmark.

The repository: COMMITS commits on `main`, each changing FILES_PER_COMMIT files of a
500-file tree of ordinary source text (so COMMITS x FILES_PER_COMMIT distinct blobs), every
MERGE_EVERY-th commit a merge of a short side branch, and PLANTED Mistral keys: some
committed and left, some deleted in the next commit, some only on a side branch, and one
only in a merge commit's own tree. The planted count goes to stderr so the runner can check
that every scanner that should find them does.

usage: generate.py COMMITS FILES_PER_COMMIT > stream
"""

import random
import sys

COMMITS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
FILES_PER_COMMIT = int(sys.argv[2]) if len(sys.argv) > 2 else 5
FILES = 500
MERGE_EVERY = 500
PLANT_EVERY = 1_000

rng = random.Random(20261126)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
WORDS = (
    "request response client server policy workspace member team budget limit token model "
    "value result error config handler payload stream reader writer cache index"
).split()
out = sys.stdout.buffer
mark = 0
planted = 0


def next_mark():
    global mark
    mark += 1
    return mark


def key():
    return "".join(rng.choice(ALNUM) for _ in range(32))


def source_text(seed):
    """A plausible Python module of ~1.5 KB, different for every seed; also full of hex,
    UUID-like and base64-like strings that a scanner must not report."""
    r = random.Random(seed)
    lines = [f"# module {seed}", "import os", ""]
    for i in range(12):
        a, b = r.choice(WORDS), r.choice(WORDS)
        lines.append(f"def {a}_{b}_{i}({a}, {b}=None):")
        lines.append(f"    checksum = '{r.getrandbits(128):032x}'")
        lines.append(f"    return {{'{a}': {a}, '{b}': {b}, 'n': {r.randint(0, 10**6)}}}")
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


def blob(data):
    m = next_mark()
    out.write(b"blob\nmark :%d\ndata %d\n" % (m, len(data)))
    out.write(data + b"\n")
    return m


def commit(ref, message, changes, parents, when):
    m = next_mark()
    msg = message.encode()
    out.write(b"commit %s\nmark :%d\n" % (ref.encode(), m))
    out.write(b"committer Bench <bench@example.com> %d +0000\n" % when)
    out.write(b"data %d\n%s\n" % (len(msg), msg))
    if parents:
        out.write(b"from :%d\n" % parents[0])
        for p in parents[1:]:
            out.write(b"merge :%d\n" % p)
    for path, blob_mark in changes:
        if blob_mark is None:
            out.write(b"D %s\n" % path.encode())
        else:
            out.write(b"M 100644 :%d %s\n" % (blob_mark, path.encode()))
    out.write(b"\n")
    return m


def path_of(i):
    return f"src/pkg{i // 50:02d}/module_{i:03d}.py"


when = 1_700_000_000
head = None
seed = 0
for n in range(COMMITS):
    when += 60
    changes = []
    for _ in range(FILES_PER_COMMIT):
        seed += 1
        changes.append((path_of(rng.randrange(FILES)), blob(source_text(seed))))
    if n % PLANT_EVERY == PLANT_EVERY // 2:
        planted += 1
        kind = planted % 3
        secret = blob(f'MISTRAL_API_KEY="{key()}"\n'.encode())
        if kind == 0:  # committed and left in the tree
            changes.append((f"config/settings_{n}.env", secret))
        else:  # committed, then deleted in the next commit
            changes.append((f"config/leaked_{n}.env", secret))
    head = commit("refs/heads/main", f"change {n}", changes, [head] if head else [], when)
    if n % PLANT_EVERY == PLANT_EVERY // 2 and planted % 3 != 0:
        when += 1
        head = commit("refs/heads/main", f"remove leak {n}", [(f"config/leaked_{n}.env", None)], [head], when)
    if n % MERGE_EVERY == MERGE_EVERY - 1:
        # A side branch of two commits, merged back. Every other merge resolves a
        # conflict by pasting a key into the merge commit itself; the next commit on
        # main removes it again, so the key exists only in the merge commit's tree.
        side = head
        merge_changes = []
        for s in range(2):
            seed += 1
            when += 1
            side_file = (f"side/{n}_{s}.py", blob(source_text(seed)))
            merge_changes.append(side_file)
            side = commit(f"refs/heads/side-{n}", f"side {n}.{s}", [side_file], [side], when)
        when += 1
        paste = (n // MERGE_EVERY) % 2 == 0
        if paste:
            planted += 1
            merge_changes.append(("app/client.py", blob(f'client = Mistral(api_key="{key()}")\n'.encode())))
        head = commit("refs/heads/main", f"merge side-{n}", merge_changes, [head, side], when)
        if paste:
            when += 1
            head = commit("refs/heads/main", f"clean up after merge {n}", [("app/client.py", blob(b"client = Mistral(api_key=os.environ['MISTRAL_API_KEY'])\n"))], [head], when)
    # a key that exists only on an unmerged branch
    if n == COMMITS // 3:
        planted += 1
        when += 1
        commit("refs/heads/experiment", "try the api", [("notebook.py", blob(f'MISTRAL_API_KEY = "{key()}"\n'.encode()))], [head], when)

out.write(b"done\n")
sys.stderr.write(f"{planted}\n")
