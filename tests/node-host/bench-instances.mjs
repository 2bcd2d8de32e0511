#!/usr/bin/env node
// Benchmark (not a test): what a new instance of the component costs in this Node, the way the
// hosts here make one per unit of work (sync glue, core modules compiled once).
//   node bench-instances.mjs GEN [N]
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { imports } from './lib/imports.mjs';

// See lib/unit-worker.mjs: jco's probes of WebAssembly.promising cost ~6 ms each on Node 20.
if (!WebAssembly.promising) WebAssembly.promising = (f) => f;
const [gen, n = '200'] = process.argv.slice(2);
const { instantiate } = await import(pathToFileURL(path.resolve(gen, 'engine.js')).href);
const modules = {};
for (const f of fs.readdirSync(gen).filter((f) => f.endsWith('.wasm'))) modules[f] = new WebAssembly.Module(fs.readFileSync(path.join(gen, f)));
const version = /'milvus:migration\/engine@([0-9.]+)'/.exec(fs.readFileSync(path.join(gen, 'engine.d.ts'), 'utf8'))[1];
const tracker = { opened() {}, closed() {}, published() {} };
const report = { log() {}, progress() {} };
const ms = [];
for (let i = 0; i < Number(n); i++) {
  const imp = imports({ version, roots: {}, tracker, report });
  const t0 = performance.now();
  instantiate((name) => modules[name], imp);
  ms.push(performance.now() - t0);
}
const first = ms[0];
ms.sort((a, b) => a - b);
const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(3);
console.log(`new instance (${process.version}, ${n} instances): first ${first.toFixed(2)} ms, median ${at(0.5)} ms, p90 ${at(0.9)} ms`);
