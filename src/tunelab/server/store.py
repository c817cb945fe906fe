"""Jobs, files, events, checkpoints and checkpoint permissions in one SQLite file; one connection behind a lock.

Rows keep the OpenAI fields as columns (JSON text for nested ones); `seq` orders lists and
pagination. Every write commits at once, so a killed service loses nothing it acknowledged.
Files and jobs belong to a project; a home made before projects existed gets the columns added
(its rows belong to the default project).
"""

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, filename TEXT NOT NULL, bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL, purpose TEXT NOT NULL, status TEXT NOT NULL, status_details TEXT, stored_name TEXT NOT NULL,
  project TEXT NOT NULL DEFAULT 'proj_default', expires_at INTEGER);
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL, model TEXT NOT NULL,
  base_name TEXT NOT NULL, training_file TEXT NOT NULL, validation_file TEXT, suffix TEXT, seed INTEGER NOT NULL,
  hyperparameters TEXT NOT NULL, method TEXT NOT NULL, metadata TEXT, status TEXT NOT NULL, fine_tuned_model TEXT,
  started_at INTEGER, finished_at INTEGER, trained_tokens INTEGER, estimated_finish INTEGER, error TEXT,
  result_files TEXT NOT NULL DEFAULT '[]', resume INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  last_step INTEGER NOT NULL DEFAULT 0, project TEXT NOT NULL DEFAULT 'proj_default', integrations TEXT,
  model_deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, job_id TEXT NOT NULL, created_at INTEGER NOT NULL,
  level TEXT NOT NULL, message TEXT NOT NULL, type TEXT NOT NULL, data TEXT);
CREATE TABLE IF NOT EXISTS checkpoints (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, job_id TEXT NOT NULL, created_at INTEGER NOT NULL,
  step_number INTEGER NOT NULL, metrics TEXT NOT NULL, fine_tuned_model_checkpoint TEXT NOT NULL, adapter_dir TEXT);
CREATE TABLE IF NOT EXISTS permissions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, checkpoint TEXT NOT NULL, project_id TEXT NOT NULL,
  created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, seq);
CREATE INDEX IF NOT EXISTS checkpoints_job ON checkpoints(job_id, seq);
CREATE INDEX IF NOT EXISTS permissions_checkpoint ON permissions(checkpoint, seq);
"""
ADDED_COLUMNS = {  # columns later versions added: table -> (column, declaration)
    "files": (("project", "TEXT NOT NULL DEFAULT 'proj_default'"), ("expires_at", "INTEGER")),
    "jobs": (
        ("project", "TEXT NOT NULL DEFAULT 'proj_default'"),
        ("integrations", "TEXT"),
        ("model_deleted", "INTEGER NOT NULL DEFAULT 0"),
    ),
    "checkpoints": (("adapter_dir", "TEXT"),),
}
JSON_COLUMNS = {"hyperparameters", "method", "metadata", "error", "result_files", "data", "metrics", "integrations"}
FINISHED = ("succeeded", "failed", "cancelled")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def _row(row: sqlite3.Row | None) -> dict | None:
    if row is None:
        return None
    return {k: (json.loads(row[k]) if k in JSON_COLUMNS and row[k] is not None else row[k]) for k in row.keys()}


def _value(key: str, value):
    return json.dumps(value) if key in JSON_COLUMNS and value is not None else value


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        for table, columns in ADDED_COLUMNS.items():
            present = {row["name"] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns:
                if name not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    def _all(self, sql: str, args=()) -> list[dict]:
        with self.lock:
            return [_row(r) for r in self.db.execute(sql, args).fetchall()]

    def _one(self, sql: str, args=()) -> dict | None:
        with self.lock:
            return _row(self.db.execute(sql, args).fetchone())

    def insert(self, table: str, row: dict) -> dict:
        keys = list(row)
        with self.lock:
            self.db.execute(
                f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                [_value(k, row[k]) for k in keys],
            )
        return self.get(table, row["id"])

    def get(self, table: str, ident: str) -> dict | None:
        return self._one(f"SELECT * FROM {table} WHERE id = ?", (ident,))

    def owned(self, table: str, ident: str, project: str) -> dict | None:
        """The row if it belongs to `project`; another project's row is as absent as a missing one."""
        return self._one(f"SELECT * FROM {table} WHERE id = ? AND project = ?", (ident, project))

    def update(self, table: str, ident: str, only_if_status: tuple[str, ...] | None = None, **changes) -> bool:
        """Set columns; with only_if_status, only while the row's status is one of those (atomic)."""
        sets = ", ".join(f"{k} = ?" for k in changes)
        sql, args = f"UPDATE {table} SET {sets} WHERE id = ?", [_value(k, v) for k, v in changes.items()] + [ident]
        if only_if_status:
            sql += f" AND status IN ({', '.join('?' * len(only_if_status))})"
            args += list(only_if_status)
        with self.lock:
            return self.db.execute(sql, args).rowcount > 0

    def delete(self, table: str, ident: str) -> bool:
        with self.lock:
            return self.db.execute(f"DELETE FROM {table} WHERE id = ?", (ident,)).rowcount > 0

    def page(
        self, table: str, after: str | None, limit: int, where: str = "", args=(), newest_first: bool = True
    ) -> tuple[list[dict], bool]:
        """One page of rows after the row `after` (by seq), and whether more follow."""
        clauses, values = ([where] if where else []), list(args)
        if after:
            anchor = self._one(f"SELECT seq FROM {table} WHERE id = ?", (after,))
            if anchor:
                clauses.append("seq < ?" if newest_first else "seq > ?")
                values.append(anchor["seq"])
        sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ?"
        rows = self._all(sql, values + [limit + 1])
        return rows[:limit], len(rows) > limit

    def jobs_with_status(self, *statuses: str) -> list[dict]:
        return self._all(
            f"SELECT * FROM jobs WHERE status IN ({', '.join('?' * len(statuses))}) ORDER BY seq", statuses
        )

    def claim_next(self, from_status: str, to_status: str, **changes) -> dict | None:
        """Atomically move the oldest job in `from_status` to `to_status` (the queue runs in order)."""
        with self.lock:
            for job in self.jobs_with_status(from_status):
                if self.update("jobs", job["id"], (from_status,), status=to_status, **changes):
                    return self.get("jobs", job["id"])
        return None

    def add_event(
        self, job_id: str, message: str, level: str = "info", type: str = "message", data: dict | None = None
    ) -> None:
        self.insert(
            "events",
            {
                "id": new_id("ftevent"),
                "job_id": job_id,
                "created_at": now(),
                "level": level,
                "message": message,
                "type": type,
                "data": data,
            },
        )

    def add_checkpoint(self, job_id: str, step: int, metrics: dict, model_name: str, adapter_dir: str | None) -> None:
        self.insert(
            "checkpoints",
            {
                "id": new_id("ftckpt"),
                "job_id": job_id,
                "created_at": now(),
                "step_number": step,
                "metrics": metrics,
                "fine_tuned_model_checkpoint": model_name,
                "adapter_dir": adapter_dir,
            },
        )

    def usable_models(self, project: str) -> list[dict]:
        """Fine-tuned models and checkpoints `project` may use: its own, and checkpoints shared with it. Each row:
        model (the id), adapter_dir (None for a job's final model), job_id, base_name, created."""
        shared = {
            r["checkpoint"] for r in self._all("SELECT checkpoint FROM permissions WHERE project_id = ?", (project,))
        }
        rows = self._all(
            "SELECT c.fine_tuned_model_checkpoint AS model, c.adapter_dir, c.created_at AS created, j.id AS job_id, "
            "j.base_name, j.project, j.fine_tuned_model FROM checkpoints c JOIN jobs j ON j.id = c.job_id "
            "WHERE j.status = 'succeeded' AND j.model_deleted = 0 ORDER BY c.seq"
        )
        return [
            r | {"adapter_dir": None if r["model"] == r["fine_tuned_model"] else r["adapter_dir"]}
            for r in rows
            if r["project"] == project or r["model"] in shared
        ]

    def expired_files(self, at: int) -> list[dict]:
        return self._all("SELECT * FROM files WHERE expires_at IS NOT NULL AND expires_at <= ?", (at,))

    def job_of_model(self, model: str, project: str) -> dict | None:
        """The succeeded job of `project` whose final model is `model` (and not deleted)."""
        return self._one(
            "SELECT * FROM jobs WHERE fine_tuned_model = ? AND project = ? AND status = 'succeeded' AND model_deleted = 0",
            (model, project),
        )

    def checkpoint_of_project(self, name: str, project: str) -> dict | None:
        """The checkpoint called `name` if a succeeded job of `project` made it."""
        return self._one(
            "SELECT c.* FROM checkpoints c JOIN jobs j ON j.id = c.job_id WHERE c.fine_tuned_model_checkpoint = ? "
            "AND j.project = ? AND j.status = 'succeeded' AND j.model_deleted = 0",
            (name, project),
        )
