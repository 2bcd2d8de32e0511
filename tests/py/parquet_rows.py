"""Reads the dump's Parquet files with pyarrow (not the tool's reader) and prints, as JSON, each
file's schema (field name -> pyarrow type, nullability) and rows (id, vector bytes as hex).

usage: parquet_rows.py FILE...
"""
import json
import struct
import sys

import pyarrow.parquet as pq


def main():
    out = []
    for path in sys.argv[1:]:
        t = pq.read_table(path)
        schema = {f.name: {"type": str(f.type), "nullable": f.nullable} for f in t.schema}
        ids = t.column(0).to_pylist()
        vectors = t.column(1).to_pylist()
        item = str(t.schema.field(1).type.value_type)
        rows = []
        for i, v in zip(ids, vectors):
            raw = bytes(v) if item == "uint8" else struct.pack(f"<{len(v)}f", *v)
            rows.append([i, raw.hex()])
        meta = pq.ParquetFile(path).metadata
        out.append({"path": path, "schema": schema, "rows": rows, "row_groups": meta.num_row_groups})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
