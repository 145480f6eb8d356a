"""A Hub-compatible HTTP server on 127.0.0.1 for publishing tests (stdlib only, one thread per request).

It speaks the endpoints `huggingface_hub` 2.x uses to create a repo and commit to it, for model and dataset
repositories (`/api/models/...`, `/api/datasets/...`; a dataset is created with `"type": "dataset"` and lives apart
from a model of the same id), with the Hub's semantics where they matter to us:

- `POST /api/repos/create` (409 when the repo exists), `POST /api/validate-yaml` (400 when the front matter is not
  YAML), `POST /api/<type>s/<repo>/branch/<branch>` (409 when it exists);
- `POST /api/<type>s/<repo>/preupload/<rev>`: every file is `regular` (no LFS/Xet), and a file already on the
  branch comes back with its git blob `oid`, which is how `huggingface_hub` skips unchanged files;
- `POST /api/<type>s/<repo>/commit/<rev>` (NDJSON header/file/deletedFile lines), atomic: a commit is applied whole
  or not at all; `parentCommit` must be the branch head (412 otherwise);
- `GET /api/<type>s/<repo>/revision/<rev>` (head sha) and `GET /api/<type>s/<repo>/tree/<rev>` (file listing).

Every request must carry `Authorization: Bearer <token>` (401 otherwise). Requests are recorded in `requests`.
`commit_faults` injects failures into the next commit attempts: `500` (answer 500, nothing applied), `"drop"`
(close the connection before applying) or `"drop_after_apply"` (apply the commit, then close the connection, so
the client never learns it succeeded).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

KIND = r"(?P<kind>models|datasets)"
REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/?]+)"


def git_blob_sha(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports it for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    summary: str
    files: dict[str, bytes]


@dataclass
class Repo:
    private: bool
    branches: dict[str, list[Commit]] = field(default_factory=dict)

    def head(self, branch: str) -> Commit:
        return self.branches[branch][-1]


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: Any


class FakeHub:
    """The server and its state; use as a context manager. `url` is the endpoint to pass as `HF_ENDPOINT`.

    Args:
        token (`str`): the only token the server accepts.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[Request] = []
        self.commit_faults: list[int | str] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ---- what tests look at -------------------------------------------------------------------------------------

    def files(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The files at the head of `branch` of a model (or, with `repo_type="dataset"`, dataset) repository."""
        return dict(self.repos[_key(repo_type, repo_id)].head(branch).files)

    def commits(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> list[Commit]:
        return list(self.repos[_key(repo_type, repo_id)].branches[branch])

    def calls(self, method: str, pattern: str) -> list[Request]:
        """Recorded requests whose path matches the regular expression `pattern`."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # ---- state changes ------------------------------------------------------------------------------------------

    def _new_commit(self, summary: str, files: dict[str, bytes]) -> Commit:
        self._counter += 1
        oid = hashlib.sha1(f"commit {self._counter} {summary}".encode()).hexdigest()
        return Commit(oid=oid, summary=summary, files=files)

    def create_repo(self, repo_id: str, private: bool, repo_type: str = "model") -> bool:
        with self._lock:
            key = _key(repo_type, repo_id)
            if key in self.repos:
                return False
            initial = self._new_commit("initial commit", {".gitattributes": b"*.safetensors filter=lfs\n"})
            self.repos[key] = Repo(private=private, branches={"main": [initial]})
            return True


def _key(repo_type: str, repo_id: str) -> str:
    """Where a repository is kept: a model under its id, other types under `<type>s/<id>`."""
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"


def _route_key(kind: str, repo: str) -> str:
    return _key(kind.removesuffix("s"), repo)


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            headers = {"X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._reply(status, {"error": message}, headers)

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.shutdown(2)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _dispatch(self, method: str) -> None:
            path = unquote(urlsplit(self.path).path)
            raw = self._body() if method == "POST" else b""
            is_ndjson = "ndjson" in (self.headers.get("Content-Type") or "")
            if is_ndjson:
                body: Any = [json.loads(line) for line in raw.splitlines() if line.strip()]
            else:
                body = json.loads(raw) if raw else None
            hub.requests.append(Request(method, path, self.headers.get("Authorization"), body))
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                self._error(401, "Invalid credentials in Authorization header")
                return
            for pattern, handler in ROUTES[method]:
                match = re.fullmatch(pattern, path)
                if match:
                    handler(self, body, **match.groupdict())
                    return
            self._error(404, f"no route for {method} {path}")

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        # ---- routes ---------------------------------------------------------------------------------------------

        def _repo(self, repo: str) -> Repo | None:
            """`repo` is a storage key (`_key`)."""
            if repo not in hub.repos:
                self._error(404, "Repository not found", "RepoNotFound")
                return None
            return hub.repos[repo]

        def _branch(self, repo: str, rev: str) -> Commit | None:
            state = self._repo(repo)
            if state is None:
                return None
            if rev not in state.branches:
                self._error(404, f"Revision not found: {rev}", "RevisionNotFound")
                return None
            return state.head(rev)

        def create(self, body: dict) -> None:
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            repo_type = body.get("type") or "model"
            created = hub.create_repo(repo_id, private=body.get("visibility") == "private", repo_type=repo_type)
            url = f"{hub.url}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
            if not created:  # the Hub answers 409 with the repo's url
                self._reply(409, {"error": "You already created this model repo", "url": url})
                return
            self._reply(200, {"url": url, "name": repo_id})

        def validate_yaml(self, body: dict) -> None:
            content = body["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
            try:
                data = yaml.safe_load(match.group(1)) if match else {}
            except yaml.YAMLError as exc:
                self._reply(400, {"errors": [{"message": str(exc)}], "warnings": []})
                return
            warnings = [] if data else [{"message": "empty or missing yaml metadata in repo card"}]
            self._reply(200, {"errors": [], "warnings": warnings})

        def branch(self, body: dict, kind: str, repo: str, rev: str) -> None:
            repo = _route_key(kind, repo)
            state = self._repo(repo)
            if state is None:
                return
            if rev in state.branches:
                self._error(409, "Branch already exists")
                return
            start = (body or {}).get("startingPoint") or "main"
            state.branches[rev] = [state.head(start)]
            self._reply(200, {})

        def revision(self, body: None, kind: str, repo: str, rev: str) -> None:
            key = _route_key(kind, repo)
            head = self._branch(key, rev)
            if head is not None:
                self._reply(200, {"id": repo, "sha": head.oid, "private": hub.repos[key].private})

        def tree(self, body: None, kind: str, repo: str, rev: str) -> None:
            repo = _route_key(kind, repo)
            head = self._branch(repo, rev)
            if head is not None:
                entries = [
                    {"type": "file", "path": p, "size": len(d), "oid": git_blob_sha(d)}
                    for p, d in sorted(head.files.items())
                ]
                self._reply(200, entries)

        def preupload(self, body: dict, kind: str, repo: str, rev: str) -> None:
            repo = _route_key(kind, repo)
            head = self._branch(repo, rev)
            if head is None:
                return
            files = []
            for item in body["files"]:
                existing = head.files.get(item["path"])
                files.append(
                    {
                        "path": item["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_sha(existing) if existing is not None else None,
                    }
                )
            self._reply(200, {"files": files, "commitOid": head.oid})

        def commit(self, body: list[dict], kind: str, repo: str, rev: str) -> None:
            repo = _route_key(kind, repo)
            fault = hub.commit_faults.pop(0) if hub.commit_faults else None
            if fault == 500:
                self._error(500, "Internal Error (injected)")
                return
            if fault == "drop":
                self._drop()
                return
            with hub._lock:
                head = self._branch(repo, rev)
                if head is None:
                    return
                header = next(line["value"] for line in body if line["key"] == "header")
                parent = header.get("parentCommit")
                if parent and parent != head.oid:
                    self._error(412, "A commit has happened since. Please refresh and try again.")
                    return
                files = dict(head.files)
                for line in body:
                    value = line["value"]
                    if line["key"] == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                    elif line["key"] == "deletedFile":
                        files.pop(value["path"], None)
                    elif line["key"] != "header":
                        self._error(400, f"unsupported commit line {line['key']!r} (the fake Hub has no LFS)")
                        return
                new = hub._new_commit(header["summary"], files)
                hub.repos[repo].branches[rev].append(new)
            if fault == "drop_after_apply":
                self._drop()
                return
            self._reply(200, {"commitUrl": f"{hub.url}/{repo}/commit/{new.oid}", "commitOid": new.oid})

    ROUTES = {
        "GET": [
            (rf"/api/{KIND}/{REPO}/revision/{REV}", Handler.revision),
            (rf"/api/{KIND}/{REPO}/tree/{REV}", Handler.tree),
        ],
        "POST": [
            (r"/api/repos/create", Handler.create),
            (r"/api/validate-yaml", Handler.validate_yaml),
            (rf"/api/{KIND}/{REPO}/branch/{REV}", Handler.branch),
            (rf"/api/{KIND}/{REPO}/preupload/{REV}", Handler.preupload),
            (rf"/api/{KIND}/{REPO}/commit/{REV}", Handler.commit),
        ],
    }
    return Handler
