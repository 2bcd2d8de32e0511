#!/usr/bin/env node
// `load` (import, index, load) and `verify` by a Node host, into a live Milvus 2.3 through the
// official Node SDK. Needs Node 24 (JSPI): the milvus imports are async and the component
// suspends while they run. Calls the exports in the native host's order (wit/README.md).
//
//   node load.mjs --gen GEN_JSPI --tables TABLES_DIR --out DUMP_DIR --milvus HOST:PORT [options]
//
// GEN_JSPI is `node transpile.mjs engine.wasm GEN_JSPI --jspi`. DUMP_DIR holds a dump (by the
// native host or dump.mjs); a Milvus with local storage on this machine reads its npy files by
// absolute path. Run one load per dump at a time: unlike the native host this example takes no
// lease.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { imports } from './lib/imports.mjs';
import { milvus as milvusImport } from './lib/milvus.mjs';
import { describe } from './lib/errors.mjs';

const usage = `usage: node load.mjs --gen GEN_JSPI --tables TABLES_DIR --out DUMP_DIR --milvus HOST:PORT
  [--database default] [--no-verify] [--index keep|autoindex|none] [--no-load] [--on-exists append|fail|skip]
  [--consistency Bounded] [--rename OLD=NEW ...] [--verbose]`;

if (typeof WebAssembly.Suspending !== 'function') {
  console.error(`load.mjs needs JSPI (WebAssembly.Suspending): Node 24 or later, not ${process.version}`);
  process.exit(2);
}

let a;
try {
  a = parseArgs({
    options: {
      gen: { type: 'string' },
      tables: { type: 'string' },
      out: { type: 'string' },
      milvus: { type: 'string' },
      database: { type: 'string', default: 'default' },
      'no-verify': { type: 'boolean', default: false },
      index: { type: 'string', default: 'keep' },
      'no-load': { type: 'boolean', default: false },
      'on-exists': { type: 'string', default: 'append' },
      consistency: { type: 'string', default: 'Bounded' },
      rename: { type: 'string', multiple: true, default: [] },
      verbose: { type: 'boolean', default: false },
    },
  }).values;
} catch (e) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
for (const k of ['gen', 'tables', 'out', 'milvus']) {
  if (!a[k]) {
    console.error(`--${k} is required\n${usage}`);
    process.exit(2);
  }
}

const gen = path.resolve(a.gen);
const { instantiate } = await import(pathToFileURL(path.join(gen, 'engine.js')).href);
const modules = {};
for (const f of fs.readdirSync(gen).filter((f) => f.endsWith('.wasm'))) modules[f] = new WebAssembly.Module(fs.readFileSync(path.join(gen, f)));
const version = /'milvus:migration\/engine@([0-9.]+)'/.exec(fs.readFileSync(path.join(gen, 'engine.d.ts'), 'utf8'))[1];
const roots = { source: path.resolve(a.tables), target: path.resolve(a.out) };
const milvus = milvusImport({ address: a.milvus, root: roots.target });

/** One export call in a fresh instance; resources are dropped by the component or on a trap. */
async function run(unit, call, args) {
  const live = new Set();
  const tracker = { opened: (r) => live.add(r), closed: (r) => live.delete(r), published: (w) => live.delete(w) };
  let said = null;
  const report = {
    log(level, message) {
      if (level === 'error') said = message;
      else if (level !== 'debug' || a.verbose) console.error(`${unit}: ${level}: ${message}`);
    },
    progress() {},
  };
  const root = instantiate((name) => modules[name], imports({ version, roots, tracker, report, milvus }));
  try {
    return await root.engine[call](...args);
  } catch (e) {
    if (e && e.payload) throw new Error(`${unit}: ${describe(e.payload)} [${e.payload.tag}]`);
    throw new Error(`${unit}: the migration engine stopped (a bug; please report it): ${e}${said ? `; it said: ${said}` : ''}`);
  } finally {
    for (const r of live) (r.abort ?? r.close).call(r);
  }
}

const options = {
  collections: [],
  indexMode: a.index,
  loadAfter: !a['no-load'],
  renames: a.rename.map((r) => r.split('=')),
  shards: 0,
  consistency: a.consistency,
  description: '',
  onExists: a['on-exists'],
  // The journal's scope: the server as configured, and the database.
  target: `${a.milvus}/${a.database}`,
  importsInFlight: 2,
  loadMode: { tag: 'bulk-import' },
};

try {
  const plan = await run('plan', 'planLoad', [options]);
  for (const w of plan.warnings) console.error(`warning: ${w}`);
  console.log(`load: ${plan.collections.length} collection(s)`);
  for (const c of plan.collections) {
    const r = await run(c.name, 'loadCollection', [c]);
    console.log(`  ${c.name}: imported ${r.imported} group(s) (${r.rows} rows), ${r.skipped} already imported by an earlier run`);
  }
  if (a['no-verify']) {
    console.log('not verified (--no-verify)');
  } else {
    let bad = 0;
    console.log('verify:');
    for (const c of plan.collections) {
      const r = await run(`verify ${c.name}`, 'verifyCollection', [c]);
      for (const p of r.partitions) {
        const ok = p.problems.length === 0 && p.expectedRows === p.actualRows;
        console.log(`  ${c.name} ${p.name}: source ${p.expectedRows}, milvus ${p.actualRows}, sampled ${p.sampled}, deleted checked ${p.deletedChecked}: ${ok ? 'ok' : 'MISMATCH'}`);
        for (const problem of p.problems) console.log(`      ${problem}`);
        bad += ok ? 0 : 1;
      }
      bad += r.expectedRows === r.actualRows ? 0 : 1;
    }
    if (bad) throw new Error(`verification found ${bad} mismatch(es)`);
    console.log('verified: every collection and partition matches the source');
  }
} catch (e) {
  console.error(`failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  milvus.close();
}
