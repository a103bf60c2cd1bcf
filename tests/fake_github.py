"""A local stand-in for the parts of GitHub's REST API the action uses (statuses and issues).

PyGithub is pointed at it through `GITHUB_API_URL`; it records every request and can be told to
refuse some of them (a token without permission).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeGitHub:
    """Serves /repos/{owner}/{repo}/... for commit statuses and issues, on 127.0.0.1."""

    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    refuse: set[tuple[str, str]] = field(default_factory=set)  # (method, path regex) answered 403
    base_url: str = ""

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self.answer("GET")

            def do_POST(self) -> None:
                self.answer("POST")

            def do_PATCH(self) -> None:
                self.answer("PATCH")

            def answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                parts = urlsplit(self.path)
                code, data = fake.handle(method, parts.path, parse_qs(parts.query), body)
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue_json(self, number: int) -> dict[str, Any]:
        issue = self.issues[number]
        return {
            "id": number,
            "number": number,
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "labels": [{"name": name} for name in issue["labels"]],
            "url": f"{self.base_url}/repos/acme/analytics/issues/{number}",
            "html_url": f"https://github.com/acme/analytics/issues/{number}",
        }

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if any(m == method and re.search(p, path) for m, p in self.refuse):
            return 403, {"message": "Resource not accessible by integration"}
        repo = "/repos/acme/analytics"
        if method == "GET" and (match := re.fullmatch(repo + r"/commits/(\w+)", path)):
            return 200, {"sha": match.group(1), "url": f"{self.base_url}{path}", "commit": {"message": "x"}}
        if method == "POST" and re.fullmatch(repo + r"/statuses/\w+", path):
            self.statuses.append(body)
            return 201, {"id": len(self.statuses), **body}
        if method == "GET" and path == repo + "/issues":
            state = query.get("state", ["open"])[0]
            labels = set(",".join(query.get("labels", [""])).split(",")) - {""}
            found = [
                self.issue_json(n)
                for n, issue in self.issues.items()
                if issue["state"] == state and labels <= set(issue["labels"])
            ]
            return 200, found
        if method == "POST" and path == repo + "/issues":
            number = len(self.issues) + 1
            self.issues[number] = {"title": body["title"], "body": body.get("body", ""), "state": "open"}
            self.issues[number]["labels"] = list(body.get("labels") or [])
            return 201, self.issue_json(number)
        if method == "POST" and (match := re.fullmatch(repo + r"/issues/(\d+)/comments", path)):
            self.comments.setdefault(int(match.group(1)), []).append(body["body"])
            return 201, {"id": 1, "body": body["body"]}
        if method == "PATCH" and (match := re.fullmatch(repo + r"/issues/(\d+)", path)):
            number = int(match.group(1))
            self.issues[number].update({k: v for k, v in body.items() if k in ("state", "title", "body")})
            return 200, self.issue_json(number)
        return 404, {"message": "Not Found"}
