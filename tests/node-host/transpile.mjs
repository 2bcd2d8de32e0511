#!/usr/bin/env node
// Turns the component into ES modules with jco:
//   node transpile.mjs engine.wasm GEN           sync glue (dump, plan: Node 20 and later)
//   node transpile.mjs engine.wasm GEN --jspi    JSPI glue (load, verify: Node 24), where the
//                                                milvus imports and the engine exports are async
// `-I sync` (instantiation mode) is what gives one fresh instance per unit of work; the WASI
// that std links comes from lib/wasi.mjs (empty), not from the preview2 shim.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [component, out, mode] = process.argv.slice(2);
if (!component || !out) {
  console.error('usage: node transpile.mjs COMPONENT.wasm OUT_DIR [--jspi]');
  process.exit(2);
}
const jco = fileURLToPath(new URL('./node_modules/@bytecodealliance/jco/dist/jco.js', import.meta.url));
const args = [jco, 'transpile', component, '-o', out, '--name', 'engine', '-I', 'sync', '--no-wasi-shim', '-q'];
if (mode === '--jspi') {
  const milvus = ['server-version', 'describe-collection', 'create-collection', 'create-partition', 'import-files', 'await-import',
    'list-imports', 'describe-indexes', 'create-index', 'load', 'flush', 'stored-rows', 'count-rows', 'get-entities',
    'insert', 'upsert', 'count-in-range', 'count-ids', 'query-range', 'delete-ids'];
  const exports = ['plan-load', 'load-collection', 'verify-collection', 'reconcile-collection', 'cleanup-collection'];
  args.push('--async-mode', 'jspi');
  args.push('--async-imports', ...milvus.map((f) => `milvus:migration/milvus#${f}`));
  args.push('--async-exports', ...exports.map((f) => `milvus:migration/engine#${f}`));
}
execFileSync(process.execPath, args, { stdio: 'inherit' });
