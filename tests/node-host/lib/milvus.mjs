// The `milvus` import over the official Node SDK (@zilliz/milvus2-sdk-node, the 2.3 line for a
// 2.3 server). Every function is async: under JSPI (Node 24) the component suspends while the
// SDK's promise runs. What each call must guarantee is wit/README.md, "milvus"; the native
// host (host/src/caps/milvus/client.rs) is the reference.
import path from 'node:path';
import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { wasmError } from './errors.mjs';

const DEFAULT_PARTITION = '_default';
// DataType numbers of milvus-proto's schema.proto.
const INT64 = 5;
const BINARY_VECTOR = 100;
const FLOAT_VECTOR = 101;

/** Pauses between polls: a twentieth of the time waited so far, 200 ms to 1 s (as the native host). */
async function poll(what, timeoutMs, done) {
  const started = Date.now();
  for (;;) {
    const v = await done();
    if (v !== undefined) return v;
    const elapsed = Date.now() - started;
    if (elapsed > timeoutMs) throw wasmError('unavailable', `${what}: not done after ${timeoutMs / 1000} s; a re-run waits on it again`);
    await new Promise((r) => setTimeout(r, Math.min(Math.max(elapsed / 20, 200), 1000)));
  }
}

/**
 * The interface for a Milvus at `address` (host:port). `root`: the target directory as the
 * server sees it (a local-storage Milvus on this machine reads the npy files by absolute path).
 */
/** An Insert/Upsert request of the component's `rows`. */
function writeRequest(collection, partition, rows) {
  const width = rows.binary ? rows.dim / 8 : rows.dim * 4;
  const view = new DataView(rows.vectors.buffer, rows.vectors.byteOffset, rows.vectors.byteLength);
  const data = Array.from(rows.ids, (id, k) => {
    const at = k * width;
    const vector = rows.binary
      ? Array.from(rows.vectors.subarray(at, at + width))
      : Array.from({ length: rows.dim }, (_, d) => view.getFloat32(at + 4 * d, true));
    return { [rows.idField]: id.toString(), [rows.vectorField]: vector };
  });
  return {
    collection_name: collection,
    ...(partition === DEFAULT_PARTITION ? {} : { partition_name: partition }),
    fields_data: data,
  };
}

export function milvus({ address, root, timeoutMs = 900_000 }) {
  const client = new MilvusClient({ address });
  const where = `Milvus at ${address}`;

  /** A reply's status as the WIT error, or nothing when it says success. */
  const check = (call, status) => {
    const s = status ?? {};
    const code = s.code || (s.error_code && s.error_code !== 'Success' ? s.error_code : 0);
    if (code) throw wasmError('remote', { code: typeof code === 'number' ? code : 1, reason: `${where} (${call}): ${s.reason}` });
  };
  /** Runs an SDK call; a transport failure is `unavailable` (the reply may have been lost). */
  const call = async (name, f) => {
    let r;
    try {
      r = await f();
    } catch (e) {
      throw wasmError('unavailable', `${where} (${name}): ${e.message ?? e}`);
    }
    check(name, r.status ?? r);
    return r;
  };
  const serverPath = (file) => path.join(root, ...file.split('/'));
  const storePath = (p) => (p.startsWith(root + '/') ? p.slice(root.length + 1) : p);
  // Tasks' collections: the 2.3 SDK reads a task's state only through ListImportTasks.
  const taskCollection = new Map();
  // A query reply does not say a vector's kind; the schema does.
  const countWhere = async (collection, partition, expr) => {
    const r = await call('Query', () =>
      client.query({ collection_name: collection, output_fields: ['count(*)'], expr, consistency_level: 'Strong', ...partitions(partition) }),
    );
    return BigInt(r.data[0]['count(*)']);
  };
  // Milvus reads -9223372036854775808 as minus an out-of-range literal: no lower bound then.
  const rangeExpr = (idField, range) =>
    range.low === -(2n ** 63n) ? `${idField} <= ${range.high}` : `${idField} >= ${range.low} and ${idField} <= ${range.high}`;
  // Float vectors come back as numbers (f32 values, exact in a double), binary ones as bytes.
  const entities = async (collection, idField, vectorField, rows) => {
    const binary = await vectorIsBinary(collection, vectorField);
    return rows.map((row) => {
      const v = row[vectorField];
      return { id: BigInt(row[idField]), vector: binary ? Uint8Array.from(v) : new Uint8Array(Float32Array.from(v).buffer) };
    });
  };
  const vectorIsBinary = async (collection, field) => {
    const d = await call('DescribeCollection', () => client.describeCollection({ collection_name: collection }));
    const f = d.schema.fields.find((f) => f.name === field);
    return f && (f.data_type === BINARY_VECTOR || f.data_type === 'BinaryVector');
  };
  const partitions = (p) => (p === undefined ? {} : { partition_names: [p] });

  return {
    async serverVersion() {
      const r = await call('GetVersion', () => client.getVersion());
      return r.version;
    },

    async describeCollection(name) {
      const has = await call('HasCollection', () => client.hasCollection({ collection_name: name }));
      if (!has.value) return undefined;
      const d = await call('DescribeCollection', () => client.describeCollection({ collection_name: name }));
      const ps = await call('ShowPartitions', () => client.showPartitions({ collection_name: name }));
      return {
        id: BigInt(d.collectionID),
        fields: d.schema.fields.map((f) => {
          const t = typeof f.data_type === 'number' ? f.data_type : { Int64: INT64, FloatVector: FLOAT_VECTOR, BinaryVector: BINARY_VECTOR }[f.data_type] ?? -1;
          const dim = (f.type_params ?? []).find((kv) => kv.key === 'dim');
          return {
            name: f.name,
            fieldType: t === INT64 ? { tag: 'int64' } : t === FLOAT_VECTOR ? { tag: 'float-vector' } : t === BINARY_VECTOR ? { tag: 'binary-vector' } : { tag: 'other', val: t },
            isPrimary: !!f.is_primary_key,
            autoId: !!f.autoID,
            dim: dim ? Number(dim.value) : undefined,
          };
        }),
        partitions: ps.partition_names,
      };
    },

    async createCollection(c) {
      await call('CreateCollection', () =>
        client.createCollection({
          collection_name: c.name,
          description: c.description,
          fields: [
            { name: c.idField, description: 'the 1.x id', data_type: INT64, is_primary_key: true, autoID: false },
            { name: c.vectorField, description: 'the 1.x vector', data_type: c.binary ? BINARY_VECTOR : FLOAT_VECTOR, dim: c.dim },
          ],
          ...(c.shards ? { shards_num: c.shards } : {}),
          consistency_level: c.consistency,
        }),
      );
    },

    async createPartition(collection, partition) {
      await call('CreatePartition', () => client.createPartition({ collection_name: collection, partition_name: partition }));
    },

    async importFiles(collection, partition, files) {
      const r = await call('Import', () =>
        client.bulkInsert({
          collection_name: collection,
          // Empty means the default partition on every version.
          ...(partition === DEFAULT_PARTITION ? {} : { partition_name: partition }),
          files: files.map(serverPath),
        }),
      );
      const task = BigInt(r.tasks[0]);
      taskCollection.set(task, collection);
      return task;
    },

    async awaitImport(task) {
      const collection = taskCollection.get(task) ?? '';
      return poll(`import task ${task}`, timeoutMs, async () => {
        const r = await call('ListImportTasks', () => client.listImportTasks({ collection_name: collection, limit: 0 }));
        const t = r.tasks.find((t) => BigInt(t.id) === task);
        if (!t) throw wasmError('not-found', `${where}: import task ${task} is not listed`);
        const reason = (t.infos ?? []).find((kv) => kv.key === 'failed_reason')?.value ?? '';
        if (t.state === 'ImportCompleted') return { completed: true, rows: BigInt(Math.max(Number(t.row_count), 0)), reason };
        if (t.state === 'ImportFailed' || t.state === 'ImportFailedAndCleaned') return { completed: false, rows: 0n, reason };
        return undefined;
      });
    },

    async listImports(collection) {
      const r = await call('ListImportTasks', () => client.listImportTasks({ collection_name: collection, limit: 0 }));
      return r.tasks.map((t) => {
        const id = BigInt(t.id);
        taskCollection.set(id, collection);
        const joined = (t.infos ?? []).find((kv) => kv.key === 'files')?.value;
        // Cut only where a comma ends an .npy name and starts a path under the root.
        const files = joined === undefined ? undefined : joined.split(new RegExp(`(?<=\\.npy),(?=${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/)`)).map(storePath);
        const state =
          t.state === 'ImportCompleted' ? 'completed' : t.state === 'ImportFailed' || t.state === 'ImportFailedAndCleaned' ? 'failed' : t.state === 'ImportPending' ? 'pending' : 'running';
        return { id, state, files: id === 0n ? undefined : files };
      });
    },

    async describeIndexes(collection) {
      let r;
      try {
        r = await client.describeIndex({ collection_name: collection });
      } catch (e) {
        throw wasmError('unavailable', `${where} (DescribeIndex): ${e.message ?? e}`);
      }
      const s = r.status ?? {};
      if (s.code === 700 || /index not (found|exist)/.test(s.reason ?? '')) return [];
      check('DescribeIndex', s);
      const get = (d, k) => d.params.find((kv) => kv.key === k)?.value ?? '';
      return r.index_descriptions.map((d) => ({ field: d.field_name, indexType: get(d, 'index_type'), metric: get(d, 'metric_type'), params: get(d, 'params') || '{}' }));
    },

    async createIndex(collection, index) {
      await call('CreateIndex', () =>
        client.createIndex({
          collection_name: collection,
          field_name: index.field,
          extra_params: { index_type: index.indexType, metric_type: index.metric, params: index.params },
        }),
      );
      await poll(`index on ${collection}.${index.field}`, timeoutMs, async () => {
        const r = await call('DescribeIndex', () => client.describeIndex({ collection_name: collection, field_name: index.field }));
        const d = r.index_descriptions[0];
        if (!d) return undefined;
        if (d.state === 'Failed') throw wasmError('remote', { code: 0, reason: `index on ${collection}.${index.field} failed: ${d.index_state_fail_reason}` });
        return d.state === 'Finished' && Number(d.indexed_rows) >= Number(d.total_rows) && Number(d.pending_index_rows) === 0 ? true : undefined;
      });
    },

    async load(collection) {
      await call('LoadCollection', () => client.loadCollection({ collection_name: collection }));
      await poll(`loading ${collection}`, timeoutMs, async () => {
        const r = await call('GetLoadingProgress', () => client.getLoadingProgress({ collection_name: collection }));
        return Number(r.progress) >= 100 ? true : undefined;
      });
    },

    // loadMode: insert (component API 0.4.0). Rows as the SDK takes them: int64 keys as
    // strings (no precision lost), float vectors as numbers, binary vectors as byte arrays.
    async insert(collection, partition, rows) {
      const r = await call('Insert', () => client.insert(writeRequest(collection, partition, rows)));
      check('Insert', r.status);
      return BigInt(r.insert_cnt ?? 0);
    },

    async upsert(collection, partition, rows) {
      const r = await call('Upsert', () => client.upsert(writeRequest(collection, partition, rows)));
      check('Upsert', r.status);
      return BigInt(r.upsert_cnt ?? 0);
    },

    async flush(collection) {
      await call('Flush', () => client.flushSync({ collection_names: [collection] }));
    },

    async storedRows(collection, partition) {
      const r =
        partition === undefined
          ? await call('GetCollectionStatistics', () => client.getCollectionStatistics({ collection_name: collection }))
          : await call('GetPartitionStatistics', () => client.getPartitionStatistics({ collection_name: collection, partition_name: partition }));
      return BigInt((r.stats ?? []).find((kv) => kv.key === 'row_count')?.value ?? r.data?.row_count ?? 0);
    },

    async countRows(collection, partition) {
      return countWhere(collection, partition, '');
    },

    // verify --full and repair (component API 0.5.0): count(*) counts every stored copy of a
    // key; a query returns one entity per key.
    async countInRange(collection, partition, idField, range) {
      return countWhere(collection, partition, rangeExpr(idField, range));
    },

    async countIds(collection, partition, idField, ids) {
      if (ids.length === 0) return 0n;
      return countWhere(collection, partition, `${idField} in [${[...ids].join(',')}]`);
    },

    async queryRange(collection, partition, idField, vectorField, range, limit) {
      const r = await call('Query', () =>
        client.query({
          collection_name: collection,
          expr: rangeExpr(idField, range),
          output_fields: [idField, vectorField],
          limit: Math.min(Math.max(limit, 1), 16384),
          consistency_level: 'Strong',
          ...partitions(partition),
        }),
      );
      return entities(collection, idField, vectorField, r.data);
    },

    async deleteIds(collection, partition, idField, ids) {
      if (ids.length === 0) return 0n;
      const r = await call('Delete', () =>
        client.deleteEntities({ collection_name: collection, partition_name: partition, expr: `${idField} in [${[...ids].join(',')}]` }),
      );
      check('Delete', r.status);
      return BigInt(r.delete_cnt ?? 0);
    },

    async getEntities(collection, idField, vectorField, ids) {
      if (ids.length === 0) return [];
      const r = await call('Query', () =>
        client.query({
          collection_name: collection,
          expr: `${idField} in [${[...ids].join(',')}]`,
          output_fields: [idField, vectorField],
          consistency_level: 'Strong',
        }),
      );
      return entities(collection, idField, vectorField, r.data);
    },

    close: () => client.closeConnection?.(),
  };
}
