#!/usr/bin/env python3
"""Independent second opinion on what a migration left in a Milvus 2.x collection (pymilvus 2.3.7).

Usage: python milvus_check.py --uri 127.0.0.1:19530 --spec FILE.json

FILE.json:
  {"collection": "name",
   "partitions": {"_default": N, "p1": M},
   "vectors": [{"id": 123, "partition": "_default", "float": [...]},
               {"id": 124, "partition": "p1", "binary_hex": "00ff.."}],
   "absent_ids": [...],
   "exact_ids": [...],            (optional: each of these ids must be stored exactly once)
   "stored_partitions": {...}}    (optional: stored entities per partition when they differ from
                                   the counts, i.e. the source repeats ids and keep-all kept them)

Connects, creates a FLAT (L2) / BIN_FLAT (HAMMING) index only if the collection has none, loads it if
needed, then checks with consistency_level="Strong":
  - count(*) of every listed partition, and that the whole collection holds exactly their sum;
  - the stored entities (row_count statistics after a flush) of every listed partition and of the
    collection: these see primary keys imported twice, which count(*) on 2.3.5 hides;
  - every listed vector is in its partition and equal to the expected one (float32 bit-exact, binary
    byte-exact);
  - no absent_id is found.
Prints one PASS/FAIL line per check; exit 0 only if all pass, 1 if any fails, 2 on a usage or
connection error.
"""
import argparse
import json
import sys
import time

import numpy as np
from pymilvus import Collection, DataType, Partition, connections, utility
from pymilvus.client.types import LoadState

BATCH = 500
STRONG = "Strong"


class Checker:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok, what):
        print(("PASS " if ok else "FAIL ") + what, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def parse_uri(uri):
    u = uri.strip()
    for prefix in ("http://", "https://", "tcp://"):
        if u.startswith(prefix):
            u = u[len(prefix):]
    u = u.rstrip("/")
    host, _, port = u.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--uri must be HOST:PORT, got {uri!r}")
    return host, port


def expr_in(field, ids):
    # json.dumps gives [1, 2] for ints and ["a", "b"] for strings, both valid Milvus expressions.
    return f"{field} in {json.dumps(list(ids))}"


def as_binary(value):
    # pymilvus 2.3 returns a binary vector as bytes or as a one-element list of bytes.
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list) and all(isinstance(v, (bytes, bytearray)) for v in value):
        return b"".join(bytes(v) for v in value)
    raise TypeError(f"unexpected binary vector value of type {type(value).__name__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", required=True, help="HOST:PORT of the Milvus gRPC endpoint")
    ap.add_argument("--spec", required=True, help="JSON file describing the expected content")
    ap.add_argument("--timeout", type=float, default=60.0, help="connect timeout in seconds")
    ap.add_argument("--user", help="log in as this user (a Milvus with authorizationEnabled)")
    ap.add_argument("--password", help="the user's password")
    ap.add_argument("--ca-cert", help="TLS: trust this CA (PEM); the server certificate must name localhost")
    args = ap.parse_args()

    try:
        with open(args.spec, encoding="utf-8") as f:
            spec = json.load(f)
        name = spec["collection"]
        partitions = spec.get("partitions", {})
        vectors = spec.get("vectors", [])
        absent = spec.get("absent_ids", [])
        host, port = parse_uri(args.uri)
    except (OSError, ValueError, KeyError) as e:
        print(f"ERROR: bad arguments or spec: {e}", file=sys.stderr)
        return 2
    try:
        login = {"user": args.user, "password": args.password or ""} if args.user else {}
        if args.ca_cert:
            login.update(secure=True, server_pem_path=args.ca_cert, server_name="localhost")
        connections.connect(host=host, port=port, timeout=args.timeout, db_name=spec.get("database", "default"), **login)
    except Exception as e:  # noqa: BLE001 - any connection failure is a usage/environment error
        print(f"ERROR: cannot connect to Milvus at {host}:{port}: {e}", file=sys.stderr)
        return 2

    c = Checker()
    if not c.check(utility.has_collection(name), f"collection {name!r} exists"):
        return 1
    coll = Collection(name)
    schema = coll.schema
    pk = schema.primary_field.name
    vec_fields = [f for f in schema.fields if f.dtype in (DataType.FLOAT_VECTOR, DataType.BINARY_VECTOR)]
    if not c.check(len(vec_fields) == 1, f"collection has exactly one vector field ({[f.name for f in vec_fields]})"):
        return 1
    vf = vec_fields[0]
    is_binary = vf.dtype == DataType.BINARY_VECTOR
    dim = int(vf.params.get("dim", 0))
    print(f"INFO collection {name!r}: primary key {pk!r}, vector {vf.name!r} "
          f"{'BINARY' if is_binary else 'FLOAT'}_VECTOR dim {dim}", flush=True)

    if not coll.has_index():
        params = ({"index_type": "BIN_FLAT", "metric_type": "HAMMING", "params": {}} if is_binary
                  else {"index_type": "FLAT", "metric_type": "L2", "params": {}})
        coll.create_index(vf.name, params)
        print(f"INFO created index {params['index_type']} ({params['metric_type']}) on {vf.name!r}", flush=True)
    if utility.load_state(name) != LoadState.Loaded:
        coll.load()
        print(f"INFO loaded collection {name!r}", flush=True)

    # Partition counts, and that nothing lives outside the listed partitions.
    existing = {p.name for p in coll.partitions}
    for part, expected in partitions.items():
        if not c.check(part in existing, f"partition {part!r} exists"):
            continue
        res = coll.query(expr="", output_fields=["count(*)"], partition_names=[part], consistency_level=STRONG)
        got = res[0]["count(*)"] if res else 0
        c.check(got == expected, f"partition {part!r} count(*) = {got}, expected {expected}")
    res = coll.query(expr="", output_fields=["count(*)"], consistency_level=STRONG)
    total = res[0]["count(*)"] if res else 0
    want = sum(partitions.values())
    c.check(total == want, f"collection {name!r} count(*) = {total}, expected {want} (sum of the listed partitions)")

    # Stored entities (row_count statistics after a flush): unlike count(*) and queries on 2.3.5,
    # these see a primary key imported twice. A collection that only received imports must hold
    # exactly the expected rows. "stored_partitions" overrides the expectation where the source
    # itself repeats ids (keep-all).
    coll.flush()
    stored_want = spec.get("stored_partitions", partitions)
    if spec.get("compact"):
        # Keys sent again with Upsert (or deleted) leave their replaced copies in the row statistics
        # until a compaction drops them. Flush first (a growing segment's deletes are not in what a
        # compaction reads), then compact; 2.3.5 may leave a segment out of one round, so a few
        # rounds until the statistics reach the expected count. Real duplicates never compact away.
        want = sum(stored_want.values())
        for _ in range(5):
            coll.flush()
            coll.compact()
            coll.wait_for_compaction_completed(timeout=300)
            coll.flush()
            if coll.num_entities == want:
                break
            time.sleep(2)
    if spec.get("no_imports"):
        tasks = utility.list_bulk_insert_tasks(collection_name=name)
        c.check(not tasks, f"no bulk import task for {name!r} (rows came by Insert): {len(tasks)} found")
    for part, expected in stored_want.items():
        if part in existing:
            got = Partition(coll, part).num_entities
            c.check(got == expected, f"partition {part!r} stores {got} entities (row_count after flush), expected {expected}")
    got = coll.num_entities
    want = sum(stored_want.values())
    c.check(got == want, f"collection {name!r} stores {got} entities (row_count after flush), expected {want}")

    # Vectors, fetched per partition so that their placement is checked too.
    by_part = {}
    for v in vectors:
        by_part.setdefault(v.get("partition", "_default"), []).append(v)
    for part, items in by_part.items():
        if part not in existing:
            for v in items:
                c.check(False, f"id {v['id']!r}: partition {part!r} does not exist")
            continue
        for s in range(0, len(items), BATCH):
            chunk = items[s:s + BATCH]
            rows = coll.query(expr=expr_in(pk, [v["id"] for v in chunk]), output_fields=[pk, vf.name],
                              partition_names=[part], consistency_level=STRONG)
            got = {r[pk]: r[vf.name] for r in rows}
            for v in chunk:
                vid = v["id"]
                if vid not in got:
                    c.check(False, f"id {vid!r} present in partition {part!r}")
                    continue
                if is_binary:
                    if "binary_hex" not in v:
                        c.check(False, f"id {vid!r}: spec gives no binary_hex for a BINARY_VECTOR collection")
                        continue
                    exp = bytes.fromhex(v["binary_hex"])
                    act = as_binary(got[vid])
                    ok = act == exp
                    detail = "" if ok else f" (got {act.hex()}, expected {exp.hex()})"
                else:
                    if "float" not in v:
                        c.check(False, f"id {vid!r}: spec gives no float for a FLOAT_VECTOR collection")
                        continue
                    exp = np.asarray(v["float"], dtype=np.float32)
                    act = np.asarray(got[vid], dtype=np.float32)
                    ok = exp.shape == act.shape and bool(np.array_equal(exp.view(np.uint32), act.view(np.uint32)))
                    detail = ""
                    if not ok:
                        if exp.shape != act.shape:
                            detail = f" (got dim {act.shape}, expected {exp.shape})"
                        else:
                            i = int(np.flatnonzero(exp.view(np.uint32) != act.view(np.uint32))[0])
                            detail = f" (first difference at [{i}]: got {act[i].item()!r}, expected {exp[i].item()!r})"
                c.check(ok, f"id {vid!r} in partition {part!r}: vector equal{detail}")

    # Ids that must not be there, in any partition.
    for s in range(0, len(absent), BATCH):
        chunk = absent[s:s + BATCH]
        rows = coll.query(expr=expr_in(pk, chunk), output_fields=[pk], consistency_level=STRONG)
        found = sorted(r[pk] for r in rows)
        c.check(not found, f"absent ids {chunk[0]!r}..{chunk[-1]!r} ({len(chunk)}): none found"
                + (f" (found {found[:10]})" if found else ""))

    # The index, when the spec names one: type, metric and build parameters as given.
    want_index = spec.get("index")
    if want_index is not None:
        idx = coll.indexes[0].params if coll.indexes else {}
        got_params = idx.get("params", {})
        if isinstance(got_params, str):
            got_params = json.loads(got_params)
        got_params = {k: int(v) if str(v).isdigit() else v for k, v in got_params.items()}
        ok = (idx.get("index_type") == want_index["index_type"] and idx.get("metric_type") == want_index["metric_type"]
              and got_params == want_index.get("params", {}))
        c.check(ok, f"index is {want_index} (got {idx})")
        c.check(utility.load_state(name) == LoadState.Loaded, "collection is loaded")

    # Exactly once: every expected id is stored exactly one time (with the count(*) checks above,
    # this means no duplicates and no gaps).
    exact = spec.get("exact_ids")
    if exact is not None:
        seen = {}
        for s in range(0, len(exact), BATCH):
            rows = coll.query(expr=expr_in(pk, exact[s:s + BATCH]), output_fields=[pk], consistency_level=STRONG)
            for r in rows:
                seen[r[pk]] = seen.get(r[pk], 0) + 1
        dup = sorted(i for i, n in seen.items() if n > 1)
        missing = sorted(set(exact) - set(seen))
        c.check(not dup, f"no id stored twice among {len(exact)}" + (f" (repeated: {dup[:10]})" if dup else ""))
        c.check(not missing, f"every one of {len(exact)} ids present" + (f" (missing: {missing[:10]})" if missing else ""))

    # Searches: each stored vector finds its own id first.
    for q in spec.get("search", []):
        metric = want_index["metric_type"] if want_index else ("HAMMING" if is_binary else "L2")
        data = [bytes.fromhex(q["binary_hex"])] if is_binary else [np.asarray(q["float"], dtype=np.float32).tolist()]
        params = {"metric_type": metric, "params": {"nprobe": 16, "ef": 64}}
        res = coll.search(data=data, anns_field=vf.name, param=params, limit=3, consistency_level=STRONG)
        top = res[0].ids[0] if res and len(res[0]) else None
        c.check(top == q["id"], f"search for the vector of id {q['id']!r} returns it first (got {top!r})")

    connections.disconnect("default")
    if c.failed:
        print(f"FAILED: {c.failed} of {c.passed + c.failed} checks failed", flush=True)
        return 1
    print(f"OK: all {c.passed} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
