#!/usr/bin/env node
// `dump` by a Node host: a Milvus 1.x installation (meta.json + its tables directory) into npy
// files and manifest.json, calling the component's exports in the native host's order
// (wit/README.md, "Exports"). Every unit runs in a Worker with a fresh instance.
//
//   node dump.mjs --gen GEN --meta meta.json --tables DIR --out DIR [options]
//
// GEN is `jco transpile engine.wasm -o GEN --name engine -I sync` (see transpile.mjs).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, UnitError } from './lib/units.mjs';

const usage = `usage: node dump.mjs --gen GEN --meta META_JSON --tables TABLES_DIR --out OUTPUT_DIR
  [--bad-data fail|skip|reject] [--duplicate-ids keep-all|keep-last] [--max-group-mib N]
  [--no-pack] [--format numpy|parquet] [--read-chunk-kb N] [--workers N] [--unit-timeout-ms N] [--verbose]
  [--fault-after-writes N (a test hook: the host fails after N writes, trapping the unit)]
Options mean what the migration.yaml keys of the same names mean (migration.badData, ...).`;

function options() {
  let a;
  try {
    a = parseArgs({
      options: {
        gen: { type: 'string' },
        meta: { type: 'string' },
        tables: { type: 'string' },
        out: { type: 'string' },
        'bad-data': { type: 'string', default: 'fail' },
        'duplicate-ids': { type: 'string', default: 'keep-all' },
        'max-group-mib': { type: 'string', default: '4096' },
        'no-pack': { type: 'boolean', default: false },
        format: { type: 'string', default: 'numpy' },
        'read-chunk-kb': { type: 'string', default: '1024' },
        workers: { type: 'string', default: '2' },
        'unit-timeout-ms': { type: 'string', default: '0' },
        verbose: { type: 'boolean', default: false },
        'fault-after-writes': { type: 'string', default: '0' },
      },
    }).values;
  } catch (e) {
    fail(2, `${e.message}\n${usage}`);
  }
  for (const k of ['gen', 'meta', 'tables', 'out']) if (!a[k]) fail(2, `--${k} is required\n${usage}`);
  if (!['fail', 'skip', 'reject'].includes(a['bad-data'])) fail(2, `--bad-data ${a['bad-data']}: fail, skip or reject`);
  if (!['keep-all', 'keep-last'].includes(a['duplicate-ids'])) fail(2, `--duplicate-ids ${a['duplicate-ids']}: keep-all or keep-last`);
  return a;
}

function fail(code, message) {
  console.error(message);
  process.exit(code);
}

const a = options();
const roots = { source: a.tables, target: a.out };
const engine = new Engine(a.gen, roots, {
  timeoutMs: Number(a['unit-timeout-ms']),
  verbose: a.verbose,
  faultAfterWrites: Number(a['fault-after-writes']),
});
// Descriptors open on files of either root: none may stay after the units (checked at the end).
const under = [path.resolve(a.tables) + '/', path.resolve(a.out) + '/'];
const openFds = () =>
  fs
    .readdirSync('/proc/self/fd')
    .map((fd) => `${fd} ${safeReadlink(`/proc/self/fd/${fd}`)}`)
    .filter((l) => under.some((u) => l.includes(` ${u}`)));
const safeReadlink = (p) => {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '?';
  }
};
fs.mkdirSync(a.out, { recursive: true });
const opts = {
  collections: [],
  idField: 'id',
  vectorField: 'data',
  readChunk: Math.min(Math.max(Number(a['read-chunk-kb']), 4), 16 * 1024) * 1024,
  maxGroupBytes: BigInt(a['max-group-mib']) << 20n,
  badData: a['bad-data'],
  keepLast: a['duplicate-ids'] === 'keep-last',
  pack: !a['no-pack'],
  format: a.format,
};
const started = performance.now();

try {
  // 1. The plan, from meta.json.
  const meta = fs.readFileSync(a.meta, 'utf8');
  const plan = await engine.run('plan', 'planDump', [{ tag: 'json', val: meta }, opts]);
  for (const w of plan.warnings) console.error(`warning: ${w}`);

  // 2. Repeated ids, per collection; keep-last drops the older copies.
  for (const c of plan.collections) {
    const idx = plan.units.flatMap((u, i) => (u.collection === c.name ? [i] : []));
    let r;
    try {
      r = await engine.run(`${c.name} ids`, 'findDuplicates', [idx.map((i) => plan.units[i]), opts]);
    } catch (e) {
      if (opts.keepLast) throw e;
      console.error(`warning: collection ${JSON.stringify(c.name)}: the ids could not be checked for repeats (${e.message}); every copy is kept`);
      continue;
    }
    if (r.repeatedIds > 0n) {
      console.error(`warning: collection ${JSON.stringify(c.name)}: ${r.repeatedIds} id(s) appear more than once (${r.extraCopies} extra copies)`);
    }
    idx.forEach((i, j) => (plan.units[i].dropRows = r.drops[j]));
  }

  // 3. No manifest may describe files this dump is about to change.
  await engine.run('manifest', 'invalidateManifest', []);

  // 4. The units: segments in no pack, then the packs, `--workers` at a time.
  const packed = new Set(plan.packs.flatMap((p) => [...p.units]));
  const items = [
    ...plan.units.flatMap((u, k) => (packed.has(k) ? [] : [{ name: `segment ${u.collection}/${u.segmentId}`, call: 'dumpSegment', args: [u, opts], k }])),
    ...plan.packs.map((p, i) => ({ name: `pack ${p.outputDir}`, call: 'dumpPack', args: [[...p.units].map((k) => plan.units[k]), p.outputDir, opts], p: i })),
  ];
  const reports = new Array(plan.units.length);
  const packFiles = new Array(plan.packs.length);
  const failures = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const it = items[next++];
      try {
        const r = await engine.run(it.name, it.call, it.args, { limited: true });
        if (it.call === 'dumpSegment') reports[it.k] = r;
        else {
          [...plan.packs[it.p].units].forEach((k, j) => (reports[k] = r.segments[j]));
          packFiles[it.p] = r.files;
        }
      } catch (e) {
        failures.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(a.workers)) }, worker));
  await engine.close();
  const leaked = openFds();
  if (leaked.length) console.error(`error: ${leaked.length} file descriptor(s) left open by the units: ${leaked.join(', ')}`);
  if (failures.length) {
    for (const e of failures) console.error(`failed: ${e.message}${e.payload ? ` [${e.payload.tag}]` : ''}`);
    fail(1, `${failures.length} of ${items.length} unit(s) failed; no manifest was written, so this dump is not complete`);
  }

  // 5. The manifest, last: its presence says the dump is complete.
  const m = await engine.run('manifest', 'writeManifest', [plan, opts, reports, packFiles]);
  const rows = reports.reduce((s, r) => s + r.rowsOut, 0n);
  const secs = (performance.now() - started) / 1000;
  console.log(`dumped ${rows} rows from ${reports.length} segment(s) in ${secs.toFixed(2)}s`);
  console.log(`manifest: ${a.out}/${m.path} (${m.bytes} bytes)`);
  await engine.close();
  // The first instance in each Worker includes the glue's warm-up; the rest is what a new
  // instance costs.
  const ms = [...engine.instantiateMs].sort((x, y) => x - y);
  console.log(`instances: ${ms.length}, new instance median ${ms[ms.length >> 1].toFixed(2)} ms (${ms[0].toFixed(2)}..${ms[ms.length - 1].toFixed(2)})`);
} catch (e) {
  await engine.close();
  if (!(e instanceof UnitError)) throw e;
  fail(1, `${e.message}${e.payload ? ` [${e.payload.tag}]` : ''}`);
}
