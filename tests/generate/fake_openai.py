"""A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI API for the generator, with injected faults.

Endpoints: `POST /v1/chat/completions`, `POST /v1/files` (multipart), `GET /v1/files/{id}/content`,
`POST /v1/batches`, `GET /v1/batches/{id}`. Every request is logged with its arrival and end time, and the server
tracks how many chat requests are in flight at once.

Faults are rules: `server.fault(kind, match=..., times=...)` makes the next `times` chat requests whose last user
message contains `match` (any request when `match` is None) fail in the given way:

- `"429"` (with `retry_after` seconds), `"500"`, `"503"`, `"400"`, `"401"`, `"quota"` (429 insufficient_quota);
- `"401_echo"`: 401 whose message repeats the key the request was sent with, as some servers do;
- `"slow"`: answer after `delay` seconds (past the client's timeout);
- `"reset"`: close the connection with a TCP reset, no response;
- `"malformed"`: 200 with a body that is not JSON;
- `"empty_choices"`: 200 with `choices: []`;
- `"refusal"`: 200 with `message.refusal` set and no content;
- `"content"`: 200 with `content` as the answer text (leaks, garbage, ...).

Inside a batch, a fault becomes that line's result (status codes go to the error file).

A server-side rate limit (`rate_limit` chat requests per second, a token bucket `rate_burst` requests deep) answers
the requests over it at once with 429 `rate_limit_exceeded` and `Retry-After` (fractional seconds: until the
bucket holds a request again), as a provider does; they are logged with `fault="rate_limit"` and counted in
`rate_limited`. Faults apply only to the requests it lets through (which count against the limit).
"""

from __future__ import annotations

import json
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def qa_responder(body: dict[str, Any]) -> str:
    """A valid answer in the format the system message asks for (two question/answer pairs)."""
    system = body["messages"][0]["content"]
    if '"User:"' in system:
        return "User: What does the image show?\n\nAssistant: A scan.\n\nUser: Anything unusual?\n\nAssistant: No."
    if "Write only the description" in system:
        return "A quiet street with a person walking a dog."
    return (
        "Question:\nWhat is shown?\n===\nAnswer:\nA street.\n===\nQuestion:\nIs it raining?\n===\nAnswer:\nYes.\n==="
    )


@dataclass
class Fault:
    kind: str
    match: str | None = None
    times: int = 1
    retry_after: float | None = None
    delay: float = 0.0
    content: str = ""


@dataclass
class Logged:
    method: str
    path: str
    body: dict[str, Any] | None
    raw: bytes
    start: float
    end: float = 0.0
    status: int = 0
    fault: str | None = None
    auth: str = ""  # which credential header came ("authorization" or "api-key"), never its value

    @property
    def last_user(self) -> str:
        return self.body["messages"][-1]["content"] if self.body else ""


@dataclass
class _Batch:
    id: str
    input_file_id: str
    polls_left: int
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})


class FakeOpenAI:
    """The server. Use as a context manager; `url` is the `base_url` for the client.

    Args:
        responder (`Callable[[dict], str]`, defaults to `qa_responder`): the answer text for a request body.
        delay_s (`float`, defaults to `0`): how long every chat request takes.
        batch_polls (`int`, defaults to `1`): retrieves of a batch before it completes.
        rate_limit (`float`, *optional*): chat requests per second the server accepts (`None`: no limit).
        rate_burst (`float`, defaults to `1`): how many requests the server accepts at once (the bucket's depth).
    """

    def __init__(
        self,
        responder: Callable[[dict[str, Any]], str] = qa_responder,
        delay_s: float = 0.0,
        batch_polls: int = 1,
        rate_limit: float | None = None,
        rate_burst: float = 1.0,
    ) -> None:
        if rate_limit is not None and (rate_limit <= 0 or rate_burst < 1):
            raise ValueError(f"need rate_limit > 0 and rate_burst >= 1, got {rate_limit} and {rate_burst}")
        self.responder, self.delay_s, self.batch_polls = responder, delay_s, batch_polls
        self.rate_limit, self.rate_burst = rate_limit, rate_burst
        self.rate_limited = 0  # chat requests answered 429 by the rate limit
        self._bucket, self._bucket_time = rate_burst, time.monotonic()
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------------------------------
    def fault(self, kind: str, match: str | None = None, times: int = 1, **kw: Any) -> None:
        with self.lock:
            self.faults.append(Fault(kind, match, times, **kw))

    def chat_log(self) -> list[Logged]:
        with self.lock:
            return [e for e in self.log if e.path.split("?")[0].endswith("/chat/completions")]

    def paths(self) -> list[str]:
        with self.lock:
            return [f"{e.method} {e.path}" for e in self.log]

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- behaviour ---------------------------------------------------------------------------------------------
    def over_rate_limit(self, now: float) -> float | None:
        """`None` if a chat request arriving at `now` is within the rate limit (and count it), else the seconds
        until it would be. Call with `lock` held."""
        if self.rate_limit is None:
            return None
        elapsed, self._bucket_time = now - self._bucket_time, now
        self._bucket = min(self.rate_burst, self._bucket + elapsed * self.rate_limit)
        if self._bucket >= 1:
            self._bucket -= 1
            return None
        self.rate_limited += 1
        return (1 - self._bucket) / self.rate_limit

    def take_fault(self, body: dict[str, Any]) -> Fault | None:
        text = body["messages"][-1]["content"]
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.match is None or fault.match in text):
                    fault.times -= 1
                    return fault
        return None

    def completion(self, body: dict[str, Any], content: str | None, refusal: str | None = None) -> dict[str, Any]:
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        completion = len(content or refusal or "") // 4
        return {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def answer(self, body: dict[str, Any], fault: Fault | None) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        """Status, body (dict, or raw bytes) and headers for a chat request (used online and in batches)."""
        kind = fault.kind if fault else None
        error = {"error": {"message": f"injected {kind}", "type": "server_error", "code": None}}
        if kind in ("500", "503", "400", "401"):
            return int(kind), error, {}
        if kind == "429":
            headers = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            return 429, {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}, headers
        if kind == "quota":
            return 429, {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}, {}
        if kind == "malformed":
            return 200, b'{"id": "chatcmpl-x", "choices": [{"message": ', {}
        if kind == "empty_choices":
            return 200, {**self.completion(body, "x"), "choices": []}, {}
        if kind == "refusal":
            return 200, self.completion(body, None, refusal="I'm sorry, I can't help with that."), {}
        if kind == "content":
            return 200, self.completion(body, fault.content), {}
        return 200, self.completion(body, self.responder(body)), {}

    def process_batch(self, batch: _Batch) -> None:
        out, err = [], []
        for line in self.files[batch.input_file_id].decode().splitlines():
            item = json.loads(line)
            status, body, _ = self.answer(item["body"], self.take_fault(item["body"]))
            if isinstance(body, bytes):
                status, body = 500, {"error": {"message": "garbled"}}
            row = {
                "id": f"batch_req_{len(out) + len(err)}",
                "custom_id": item["custom_id"],
                "response": {"status_code": status, "request_id": "req", "body": body},
                "error": None,
            }
            (out if status == 200 else err).append(json.dumps(row))
        batch.counts = {"total": len(out) + len(err), "completed": len(out), "failed": len(err)}
        batch.output_file_id = self._store(("\n".join(out) + "\n").encode()) if out else None
        batch.error_file_id = self._store(("\n".join(err) + "\n").encode()) if err else None
        batch.status = "completed"

    def _store(self, data: bytes) -> str:
        file_id = f"file-{len(self.files)}"
        self.files[file_id] = data
        return file_id

    def batch_json(self, batch: _Batch) -> dict[str, Any]:
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "created_at": int(time.time()),
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "request_counts": batch.counts,
        }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: Nagle + delayed ACK would add 40 ms

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        fake, raw = self.fake, self._read()
        if self.path.split("?")[0].endswith("/chat/completions"):  # OpenAI, or Azure's deployment route
            self._chat(raw)
        elif self.path.endswith("/files"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw
            )
            parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
            data = parts["file"].get_payload(decode=True)
            with fake.lock:
                fake.log.append(Logged("POST", self.path, None, raw, time.monotonic(), time.monotonic(), 200))
                file_id = fake._store(data)
            self._send(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
                             "filename": "requests.jsonl", "purpose": "batch", "status": "processed"})  # fmt: skip
        elif self.path.endswith("/batches"):
            body = json.loads(raw)
            with fake.lock:
                fake.log.append(Logged("POST", self.path, body, raw, time.monotonic(), time.monotonic(), 200))
                batch = _Batch(f"batch_{len(fake.batches)}", body["input_file_id"], fake.batch_polls)
                fake.batches[batch.id] = batch
            self._send(200, fake.batch_json(batch))
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_GET(self) -> None:
        fake = self.fake
        with fake.lock:
            fake.log.append(Logged("GET", self.path, None, b"", time.monotonic(), time.monotonic(), 200))
        parts = self.path.rstrip("/").split("/")
        if "batches" in parts:
            batch = fake.batches.get(parts[-1])
            if batch is None:
                return self._send(404, {"error": {"message": "no such batch"}})
            with fake.lock:
                batch.polls_left -= 1
                if batch.polls_left > 0:
                    batch.status = "in_progress"
            if batch.polls_left <= 0 and batch.status != "completed":
                fake.process_batch(batch)
            return self._send(200, fake.batch_json(batch))
        if parts[-1] == "content" and parts[-2] in fake.files:
            return self._send(200, fake.files[parts[-2]])
        return self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, raw: bytes) -> None:
        fake = self.fake
        body = json.loads(raw)
        entry = Logged("POST", self.path, body, raw, time.monotonic())
        entry.auth = ",".join(h for h in ("authorization", "api-key") if self.headers.get(h))
        with fake.lock:
            fake.log.append(entry)
            wait = fake.over_rate_limit(entry.start)
            if wait is None:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            else:
                entry.end, entry.status, entry.fault = time.monotonic(), 429, "rate_limit"
        if wait is not None:
            error = {"error": {"message": "Rate limit reached for requests", "code": "rate_limit_exceeded"}}
            return self._send(429, error, {"retry-after": f"{math.ceil(wait * 1000) / 1000:.3f}"})  # never 0
        fault = fake.take_fault(body)
        entry.fault = fault.kind if fault else None
        time.sleep(fake.delay_s + (fault.delay if fault else 0.0))
        status, payload, headers = fake.answer(body, fault)
        if fault and fault.kind == "401_echo":
            key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
            status, payload = (
                401,
                {"error": {"message": f"Incorrect API key provided: {key}.", "code": "invalid_api_key"}},
            )
        with fake.lock:  # before answering: the client cannot send its next request before it has this answer
            fake.in_flight -= 1
            entry.end = time.monotonic()
            entry.status = -1 if fault and fault.kind == "reset" else status
        if fault and fault.kind == "reset":
            self._reset()
        else:
            self._send(status, payload, headers)
