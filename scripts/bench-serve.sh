#!/usr/bin/env bash
# Benchmark (not a test): the service under load. Two tenants each submit 8 `migrate` jobs of the
# sample installation at once (each job into its own staging prefix and its own collection names)
# against the live Milvus 2.3.5 (local storage); prints whether all succeeded with exact counts
# (each job's verify, and pymilvus entity counts after a flush against the meta's live rows), the
# wall time, p50/p99 latency of GET /v1/jobs/{id} while the jobs run, and a fresh instance's
# creation time with the pooling allocator against on-demand allocation.
#   BENCH_DIR (default /dev/shm/mm-bench-serve), JOBS (per tenant, default 8)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
mm_build >&2
bash scripts/python-env.sh >&2
MM_MILVUS_STORAGE=local bash scripts/milvus.sh start >&2
bin="$CARGO_TARGET_DIR/release"
dir="${BENCH_DIR:-/dev/shm/mm-bench-serve}"
jobs="${JOBS:-8}"
rm -rf "$dir" && mkdir -p "$dir"
serve_pid=""
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$dir"' EXIT
for t in t1 t2; do "$bin/gen-fixture" sample "$dir/$t/src" >&2; done
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat > "$dir/serve.yaml" <<YAML
listen: 127.0.0.1:0
dataDir: $dir/service
concurrentUnits: 8
tenants:
- id: t1
  tokens: [{sha256: $(sha token-1)}]
  stores: {data: {url: "file://$dir/t1"}}
  milvus: {main: {endpoint: "127.0.0.1:19530"}}
  quotas: {runningJobs: $jobs, activeJobs: $jobs, concurrentUnits: 4}
- id: t2
  tokens: [{sha256: $(sha token-2)}]
  stores: {data: {url: "file://$dir/t2"}}
  milvus: {main: {endpoint: "127.0.0.1:19530"}}
  quotas: {runningJobs: $jobs, activeJobs: $jobs, concurrentUnits: 4}
YAML
"$bin/milvus-migration" serve --config "$dir/serve.yaml" > "$dir/serve.out" 2> "$dir/serve.err" &
serve_pid=$!
for _ in $(seq 100); do grep -q http:// "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$dir/serve.out")
.venv/bin/python - "$url" "$dir" "$jobs" <<'PY'
import json, sqlite3, statistics, sys, threading, time, urllib.request, uuid
from pymilvus import connections, Collection
url, root, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = uuid.uuid4().hex[:6]

def call(method, path, token, body=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())

# The meta's own facts: live collections and their rows minus deleted ones are checked by the
# jobs' verify; here, the meta's collection names (for renames) and row counts.
db = sqlite3.connect(f"{root}/t1/src/db/meta.sqlite")
names = [r[0] for r in db.execute("SELECT table_id FROM Tables WHERE state != 1 AND owner_table = ''")]
jobs = []
t0 = time.time()
for i in range(per):
    for t, token in (("t1", "token-1"), ("t2", "token-2")):
        renames = {n: f"{n}_{t}_{run}_{i}" for n in names}
        body = {"kind": "migrate",
                "source": {"meta": {"sqlite": {"store": "data", "path": "src/db/meta.sqlite"}}, "tables": {"store": "data", "prefix": "src/db/tables"}},
                "staging": {"store": "data", "prefix": f"out-{i}"}, "target": {"milvus": "main"},
                "options": {"rename": renames}}
        j = call("POST", "/v1/jobs", token, body)
        jobs.append((token, j["id"], renames))

latencies, done = [], threading.Event()
def poll():
    k = 0
    while not done.is_set():
        token, jid, _ = jobs[k % len(jobs)]
        s = time.perf_counter(); call("GET", f"/v1/jobs/{jid}", token); latencies.append(time.perf_counter() - s)
        k += 1; time.sleep(0.02)
threading.Thread(target=poll, daemon=True).start()
states = {}
while True:
    states = {jid: call("GET", f"/v1/jobs/{jid}", token) for token, jid, _ in jobs}
    if all(j["state"] in ("succeeded", "failed", "cancelled", "interrupted") for j in states.values()):
        break
    time.sleep(0.5)
done.set()
wall = time.time() - t0
ok = [j for j in states.values() if j["state"] == "succeeded" and j["report"]["outcome"] == "succeeded"]
connections.connect(host="127.0.0.1", port="19530")
exact, checked = 0, 0
for token, jid, renames in jobs:
    rep = states[jid]["report"]
    for c in rep["collections"]:
        expected = sum(p.get("expectedRows") or 0 for p in c["partitions"])
        col = Collection(c["target"]); col.flush()
        checked += 1
        exact += col.num_entities == expected and c.get("verified") is True
        col.drop()
lat = sorted(latencies)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(f"{len(jobs)} migrate jobs (2 tenants x {per}) of the sample installation: {len(ok)} succeeded; "
      f"{exact}/{checked} collections exact (verify + pymilvus entities after flush); wall {wall:.1f} s")
print(f"GET /v1/jobs/{{id}} while they ran: {len(lat)} calls, p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms")
sys.exit(0 if len(ok) == len(jobs) and exact == checked else 1)
PY
cargo test --release --workspace bench_instance_creation -- --ignored --nocapture 2>/dev/null | grep 'new instance'
