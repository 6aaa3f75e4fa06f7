#!/usr/bin/env python3
"""Backfill tasks.status and tasks.seconds, the way an application engineer would.

The benchmark's "engineer" variant (tests/bench/backfill_bench.cpp): the script a
careful engineer writes with psycopg2 when asked to fill two columns of a big live
table, with an undo log. It walks the table in keyset batches, fills an empty
status with a default and converts minutes to seconds where seconds is empty,
guards each UPDATE with `IS NULL` so a value someone wrote meanwhile is kept,
logs every changed cell (old and new value) in backfill_log in the same
transaction, and commits per batch, so an interruption loses at most one batch.

Usage: engineer_backfill.py --dsn CONNINFO [--batch-size 1000]
"""
import argparse
import sys
import time
import uuid

import psycopg2
from psycopg2.extras import execute_values

DEFAULT_STATUS = "todo"

LOG_TABLE = """
CREATE TABLE IF NOT EXISTS backfill_log (
    id          bigserial PRIMARY KEY,
    run_id      uuid        NOT NULL,
    table_name  text        NOT NULL,
    row_id      bigint      NOT NULL,
    column_name text        NOT NULL,
    old_value   text,
    new_value   text,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS backfill_log_run_id ON backfill_log (run_id);
"""

FETCH_BATCH = """
SELECT id, status, minutes, seconds
  FROM tasks
 WHERE id > %s
 ORDER BY id
 LIMIT %s
"""

UPDATE_STATUS = """
UPDATE tasks AS t
   SET status = v.status
  FROM (VALUES %s) AS v (id, status)
 WHERE t.id = v.id
   AND t.status IS NULL
RETURNING t.id, t.status
"""

UPDATE_SECONDS = """
UPDATE tasks AS t
   SET seconds = v.seconds
  FROM (VALUES %s) AS v (id, seconds)
 WHERE t.id = v.id
   AND t.seconds IS NULL
RETURNING t.id, t.seconds
"""

INSERT_LOG = """
INSERT INTO backfill_log (run_id, table_name, row_id, column_name, old_value, new_value)
VALUES %s
"""


def backfill_batch(cur, run_id, rows, batch_size):
    """Fills the empty cells of one batch of rows; returns the number of cells changed."""
    status_updates = [(row_id, DEFAULT_STATUS) for row_id, status, _, _ in rows if status is None]
    seconds_updates = [
        (row_id, minutes * 60)
        for row_id, _, minutes, seconds in rows
        if seconds is None and minutes is not None
    ]
    log = []
    if status_updates:
        changed = execute_values(cur, UPDATE_STATUS, status_updates, page_size=batch_size, fetch=True)
        log += [(run_id, "tasks", row_id, "status", None, new) for row_id, new in changed]
    if seconds_updates:
        changed = execute_values(cur, UPDATE_SECONDS, seconds_updates, page_size=batch_size, fetch=True)
        log += [(run_id, "tasks", row_id, "seconds", None, str(new)) for row_id, new in changed]
    if log:
        execute_values(cur, INSERT_LOG, log, page_size=batch_size)
    return len(log)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    conn = psycopg2.connect(args.dsn)
    run_id = str(uuid.uuid4())
    with conn.cursor() as cur:
        cur.execute(LOG_TABLE)
    conn.commit()

    started = time.monotonic()
    last_id, scanned, changed = 0, 0, 0
    while True:
        with conn.cursor() as cur:
            cur.execute(FETCH_BATCH, (last_id, args.batch_size))
            rows = cur.fetchall()
            if not rows:
                break
            changed += backfill_batch(cur, run_id, rows, args.batch_size)
        conn.commit()
        last_id = rows[-1][0]
        scanned += len(rows)
    conn.close()
    print(
        f"run {run_id}: {scanned} rows scanned, {changed} cells changed "
        f"in {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
