// A Worker that runs units of work: for each request, a fresh instance of the component, one
// export call, then clean-up. The main thread (units.mjs) terminates the Worker when a unit
// passes its wall-clock limit: JS has no fuel, so this is the CPU budget an embedder can have.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { imports } from './imports.mjs';

const { gen, modules, version, roots, verbose, faultAfterWrites } = workerData;

// jco's sync glue probes WebAssembly.promising about ten times per instance and each failed
// probe costs ~6 ms on Node 20 (no JSPI); its results are unused in sync mode, so an identity
// function is safe and brings instantiation under a millisecond.
if (!WebAssembly.promising) WebAssembly.promising = (f) => f;

const { instantiate } = await import(gen);

parentPort.on('message', ({ id, call, args, unit }) => {
  // Every descriptor and staged file the instance holds, reported to the main thread as well,
  // so that a terminated Worker leaves nothing behind either.
  const live = new Set();
  const tell = (m) => parentPort.postMessage({ id, ...m });
  const tracker = {
    opened(r) {
      live.add(r);
      tell({ held: { fd: r.fd, staging: r.staging ?? null } });
    },
    closed(r) {
      live.delete(r);
      tell({ released: { fd: r.openedFd ?? null, staging: r.staging ?? null } });
    },
    published(w) {
      live.delete(w);
      tell({ released: { fd: w.openedFd ?? null, staging: w.staging } });
    },
  };
  let said = null;
  const report = {
    log(level, message) {
      if (level === 'error') said = message; // a panic's message, just before the trap
      else if (level !== 'debug' || verbose) console.error(`${unit}: ${level}: ${message}`);
    },
    progress() {},
  };
  const imp = imports({ version, roots, tracker, report, faultAfterWrites });
  const t0 = performance.now();
  const root = instantiate((name) => modules[name], imp);
  const instantiateMs = performance.now() - t0;
  tell({ started: true }); // the wall-clock limit counts from here
  const started = performance.now();
  try {
    const value = root.engine[call](...args);
    tell({ done: { value, instantiateMs, ranMs: performance.now() - started } });
  } catch (e) {
    // An engine error comes with its WIT payload; anything else is a trap (a bug, or an import
    // that threw something other than a WIT error), after which jco drops nothing.
    const ranMs = performance.now() - started;
    tell({ done: e && e.payload ? { error: e.payload, instantiateMs, ranMs } : { trap: `${e}${said ? `; it said: ${said}` : ''}`, instantiateMs, ranMs } });
  } finally {
    for (const r of [...live]) (r.abort ?? r.close).call(r);
  }
});
