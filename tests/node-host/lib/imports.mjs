// The component's imports for one instance: its world, and the empty WASI that Rust's std
// links (wasi.mjs). jco's generated .d.ts names the interfaces with their version and its JS
// reads them without it, so both keys are given.
import { blobStore } from './blob-store.mjs';
import { wasmError } from './errors.mjs';
import { wasi } from './wasi.mjs';

const unsupported = (what) => () => {
  throw wasmError('unsupported', `${what}: this host passes meta.json and has no Milvus here`);
};

/** `milvus` is the target server's interface (load.mjs); a dump needs none. */
export function imports({ version, roots, tracker, report, milvus, faultAfterWrites }) {
  const ifaces = {
    'blob-store': blobStore(roots, tracker, { faultAfterWrites }),
    'meta-db': { listTables: unsupported('meta-db.list-tables'), query: unsupported('meta-db.query') },
    milvus: milvus ?? new Proxy({}, { get: (_, name) => unsupported(`milvus.${String(name)}`) }),
    report,
    types: {},
  };
  const all = { ...wasi };
  for (const [name, impl] of Object.entries(ifaces)) {
    all[`milvus:migration/${name}`] = impl;
    all[`milvus:migration/${name}@${version}`] = impl;
  }
  return all;
}
