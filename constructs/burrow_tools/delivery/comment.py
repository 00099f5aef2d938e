"""Post one pull-request comment per environment, updated in place on every push.

`preview` instead of an environment posts the preview's summary (markdown, `make preview`) as
the PR's one preview comment.

Usage: python -m burrow_tools.delivery.comment <env|preview> <diff or summary file>
Needs GITHUB_TOKEN, GITHUB_REPOSITORY and PR_NUMBER (the workflow sets them).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

API = os.environ.get("GITHUB_API_URL", "https://api.github.com")
LIMIT = 60000  # GitHub refuses comments over 65536 characters


def marker(env: str) -> str:
    return f"<!-- burrow-diff:{env} -->"


def body(env: str, diff: str) -> str:
    text = diff if len(diff) <= LIMIT else diff[:LIMIT] + "\n… (cut; the full diff is in the job log)"
    if env == "preview":
        return f"{marker(env)}\n{text}"
    return f"{marker(env)}\n### `cdktf diff` for `{env}`\n\n```\n{text}\n```\n"


def _call(method: str, url: str, token: str, payload: dict | None = None):
    request = urllib.request.Request(url, method=method, data=json.dumps(payload).encode() if payload else None)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Accept", "application/vnd.github+json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def upsert(env: str, diff: str, repo: str, pr: str, token: str) -> str:
    """Update the environment's comment if there is one, else create it; return its URL."""
    comments_url = f"{API}/repos/{repo}/issues/{pr}/comments"
    page = 1
    while True:
        comments = _call("GET", f"{comments_url}?per_page=100&page={page}", token)
        for comment in comments:
            if comment["body"].startswith(marker(env)):
                return _call("PATCH", comment["url"], token, {"body": body(env, diff)})["html_url"]
        if len(comments) < 100:
            break
        page += 1
    return _call("POST", comments_url, token, {"body": body(env, diff)})["html_url"]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[1], file=sys.stderr)
        sys.exit(2)
    env_name, diff_file = sys.argv[1], Path(sys.argv[2])
    url = upsert(
        env_name,
        diff_file.read_text(encoding="utf-8", errors="replace"),
        os.environ["GITHUB_REPOSITORY"],
        os.environ["PR_NUMBER"],
        os.environ["GITHUB_TOKEN"],
    )
    print(url)
