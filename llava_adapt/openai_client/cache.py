"""The persistent request cache: a response is paid for once, whatever happens to the run.

A SQLite database (`cache_dir/responses.sqlite`, write-ahead log) keyed by `cache_key` — the sha256 of the
exact request body. Each answered request is committed as soon as its response arrives, so a run killed with
`kill -9` keeps every answer it received; the rerun sends no request whose answer is here. It stores the raw
response body and where it came from (online call or Batch API), never the API key or any header.

The key covers the request body only (model name, messages, parameters), not the server: the same model name on two
servers shares answers. The cache lives in the run directory, so this only matters when one run switches servers;
delete `cache/` (or use another run directory) to ask the new server afresh.

The Batch API's bookkeeping lives here too (which batch holds which request), so a run killed while a batch is
running picks that batch up again instead of submitting (and paying for) it twice.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal requests give equal text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(body: dict[str, Any], sample: int = 0) -> str:
    """The cache key of a request: sha256 of its canonical JSON.

    The second, third, ... sample of the same request are independent draws, so for `sample > 0` the index is
    hashed too (it is not sent: the request stays the same).

    Args:
        body (`dict`): the request body.
        sample (`int`, defaults to `0`): the sample index.
    """
    text = canonical_json(body)
    if sample:
        text += f"#sample={sample}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    round INTEGER NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_items (
    key TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    PRIMARY KEY (key, batch_id)
);
"""

BATCH_OPEN = "open"  # submitted, results not yet collected
BATCH_DONE = "done"  # results collected (successes are in `responses`)


class ResponseCache:
    """Responses by request hash, in a SQLite file under `cache_dir`.

    Args:
        cache_dir (`str | Path`): the folder (created if missing).
    """

    FILENAME = "responses.sqlite"

    def __init__(self, cache_dir: str | Path) -> None:
        self.path = Path(cache_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process; WAL keeps it consistent
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached response body for `key`, or `None`."""
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, response: dict[str, Any], model: str, source: str = "online") -> None:
        """Store (and commit) the response body of request `key`."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, model, source, response, created) VALUES (?, ?, ?, ?, ?)",
            (key, model, source, json.dumps(response, ensure_ascii=False), time.time()),
        )

    def __contains__(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def add_batch(self, batch_id: str, keys: Iterable[str], round_: int) -> None:
        """Record that batch `batch_id` (submission round `round_`) holds the requests `keys`."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO batches (id, round, status, created) VALUES (?, ?, ?, ?)",
                (batch_id, round_, BATCH_OPEN, time.time()),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO batch_items (key, batch_id) VALUES (?, ?)", [(k, batch_id) for k in keys]
            )

    def open_batches(self) -> list[tuple[str, int]]:
        """`(batch id, round)` of batches submitted but not yet collected, oldest first."""
        rows = self._db.execute("SELECT id, round FROM batches WHERE status = ? ORDER BY created", (BATCH_OPEN,))
        return [(r[0], r[1]) for r in rows]

    def batch_keys(self, batch_id: str) -> list[str]:
        """The request keys batch `batch_id` holds."""
        rows = self._db.execute("SELECT key FROM batch_items WHERE batch_id = ?", (batch_id,))
        return [r[0] for r in rows]

    def submissions(self, key: str) -> int:
        """How many batches request `key` has been submitted in."""
        return self._db.execute("SELECT COUNT(*) FROM batch_items WHERE key = ?", (key,)).fetchone()[0]

    def close_batch(self, batch_id: str) -> None:
        """Mark batch `batch_id` as collected."""
        self._db.execute("UPDATE batches SET status = ? WHERE id = ?", (BATCH_DONE, batch_id))
