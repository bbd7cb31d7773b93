"""The reading side of a CSV or JSONL load in process, for instruction counts under callgrind.

Reads a CSV with ``CsvReader`` (a ``.jsonl`` file with ``JsonlReader``) and validates every
batch against a Table Schema (what the loader's reading thread does, without the writer), so
that

    valgrind --tool=callgrind --callgrind-out-file=cg.out \\
        --toggle-collect='*CsvReader::next_batch*' \\
        --toggle-collect='*RecordBatch::validate_for*' \\
        python3 benches/callgrind_reader.py DATA.csv SCHEMA.json [BATCH_ROWS]

counts the instructions of parsing (``next_batch``; for JSONL toggle on
``'*JsonlReader*next_batch*'`` instead: the first pass over the keys, in ``JsonlReader::open``,
is left out) and of coercion + checks
(``validate_for``) only; ``callgrind_annotate cg.out`` splits them by function. Divide the
total by the rows printed to get instructions a row. Without valgrind it prints the rows and
the thread CPU seconds of the same work.
"""

from __future__ import annotations

import sys
import time

from tallyclerk._core import CsvReader, JsonlReader, TableSchema


def main(argv: list[str]) -> int:
    data, schema_path = argv[1], argv[2]
    batch_rows = int(argv[3]) if len(argv) > 3 else 7000
    with open(schema_path, encoding="utf-8") as f:
        schema = TableSchema.from_json(f.read())
    rows = rejected = 0
    start = time.thread_time()
    reader = JsonlReader if data.endswith(".jsonl") else CsvReader
    for batch in reader(data, batch_rows=batch_rows):
        rejected += batch.validate(schema)
        rows += len(batch)
    cpu = time.thread_time() - start
    print(f"rows {rows} rejected {rejected} cpu {cpu:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
