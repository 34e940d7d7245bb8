#!/usr/bin/env python3
"""Writes a large, valid policy repository for the validate benchmark.

1,000 workspaces x 10 keys, 5,000 members and 200 teams, spread over one file per
workspace, 50 member files and 20 team files, so loading is as file-heavy as a real
monorepo of policies. Deterministic: the same output on every run.

usage: generate.py OUT_DIR
"""

import os
import sys

WORKSPACES = 1000
KEYS_PER_WORKSPACE = 10
MEMBERS = 5000
TEAMS = 200
MEMBER_FILES = 50
TEAM_FILES = 20
MODELS = ["mistral-small-latest", "codestral-latest", "mistral-embed", "mistral-large-latest"]


def email(i):
    return f"user{i:05d}@bench.example"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(out):
    write(os.path.join(out, "organization.yaml"),
          "version: 1\norganization:\n  spend_limit: 100000\n  min_admins: 2\n"
          "roles:\n  developer:\n    models: [mistral-small-latest, codestral-latest]\n"
          "    max_tokens_per_request: 2000\n    daily_token_budget: 500000\n")

    per_file = MEMBERS // MEMBER_FILES
    for f in range(MEMBER_FILES):
        lines = ["version: 1", "members:"]
        for i in range(f * per_file, (f + 1) * per_file):
            roles = "organization_admin" if i < 2 else "member"
            lines.append(f"  {email(i)}:")
            lines.append(f"    name: User Number{i}")
            lines.append(f"    roles: [{roles}]")
        write(os.path.join(out, "members", f"members-{f:02d}.yaml"), "\n".join(lines) + "\n")

    per_file = TEAMS // TEAM_FILES
    for f in range(TEAM_FILES):
        lines = ["version: 1", "teams:"]
        for t in range(f * per_file, (f + 1) * per_file):
            lines.append(f"  team-{t:03d}:")
            lines.append(f"    description: Team number {t}")
            lines.append("    members:")
            for m in range(25):
                lines.append(f"      - {email((t * 25 + m) % MEMBERS)}")
            lines.append("    workspaces:")
            for w in range(5):
                lines.append(f"      ws-{(t * 5 + w) % WORKSPACES:04d}: [user, dev]")
            lines.append("    role: developer")
        write(os.path.join(out, "teams", f"teams-{f:02d}.yaml"), "\n".join(lines) + "\n")

    for w in range(WORKSPACES):
        admin = email(w % MEMBERS)
        lines = ["version: 1", "workspaces:", f"  ws-{w:04d}:",
                 f"    description: Workspace number {w}",
                 f"    admin: {admin}",
                 "    members:",
                 f"      {admin}: [workspace_admin]",
                 f"      {email((w + 1) % MEMBERS)}: [dev, observability_viewer]",
                 f"      {email((w + 2) % MEMBERS)}: [billing]",
                 "    spend_limit: 500",
                 "    rpm: 1000",
                 f"    models: [{', '.join(MODELS)}]",
                 "    keys:"]
        for k in range(KEYS_PER_WORKSPACE):
            lines += [f"      key-{k:02d}:",
                      f"        owner: {email((w * KEYS_PER_WORKSPACE + k) % MEMBERS)}",
                      "        expires_after_days: 90",
                      "        rotate_before_days: 14",
                      f"        models: [{MODELS[k % len(MODELS)]}]",
                      "        rpm: 100",
                      f"        secret: {{ file: secrets/ws-{w:04d}/key-{k:02d}.key }}"]
        write(os.path.join(out, "workspaces", f"ws-{w:04d}.yaml"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
