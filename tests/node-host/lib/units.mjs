// Runs units of work: each export call in a fresh instance, in a pool of Workers, under a
// wall-clock limit. The core modules are compiled once and shared with every Worker; a Worker
// stopped for the limit is replaced.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe } from './errors.mjs';

/** A unit that did not return: an engine error (`payload`), a trap, or the wall-clock limit. */
export class UnitError extends Error {
  constructor(unit, message, payload = null) {
    super(`${unit}: ${message}`);
    this.payload = payload;
  }
}

export class Engine {
  /**
   * `gen`: a directory that `jco transpile --name engine -I sync` wrote. `roots`: the blob-store
   * roots { source, target }. `timeoutMs`: the wall-clock limit of a limited unit, from its
   * instance's start (0: none). `faultAfterWrites`: test hook, see blob-store.mjs.
   */
  constructor(gen, roots, { timeoutMs = 0, verbose = false, faultAfterWrites = 0 } = {}) {
    const modules = {};
    for (const f of fs.readdirSync(gen).filter((f) => f.endsWith('.wasm'))) {
      modules[f] = new WebAssembly.Module(fs.readFileSync(path.join(gen, f)));
    }
    const dts = fs.readFileSync(path.join(gen, 'engine.d.ts'), 'utf8');
    const version = /'milvus:migration\/engine@([0-9.]+)'/.exec(dts)[1];
    this.workerData = { gen: pathToFileURL(path.join(gen, 'engine.js')).href, modules, version, roots, verbose, faultAfterWrites };
    this.timeoutMs = timeoutMs;
    this.idle = [];
    this.all = new Set();
    this.next = 0;
    /** Instantiation times (ms) of every unit, for the benchmark. */
    this.instantiateMs = [];
  }

  /**
   * Calls export `call` with `args` in a fresh instance; resolves with its value. `limited`: the
   * wall-clock limit applies (units of data work; not the plan or the manifest).
   */
  run(unit, call, args, { limited = false } = {}) {
    const w = this.idle.pop() ?? this.#spawn();
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      w.job = { id, unit, limited, resolve, reject, timer: null };
      w.worker.postMessage({ id, call, args, unit });
    });
  }

  /** Stops every Worker; resolves once they are gone. */
  async close() {
    await Promise.all([...this.all].map((w) => w.worker.terminate()));
  }

  #spawn() {
    const w = { worker: new Worker(new URL('./unit-worker.mjs', import.meta.url), { workerData: this.workerData }), job: null, fds: new Set(), staged: new Set() };
    this.all.add(w);
    w.worker.on('message', (m) => this.#message(w, m));
    w.worker.on('error', (e) => this.#end(w, (j) => j.reject(new UnitError(j.unit, `the host's worker failed: ${e.stack ?? e}`))));
    w.worker.on('exit', (code) => {
      this.all.delete(w);
      this.idle = this.idle.filter((x) => x !== w);
      release(w);
      const j = w.job;
      w.job = null;
      if (j) {
        clearTimeout(j.timer);
        j.reject(new UnitError(j.unit, j.overdue ? `stopped: still running after ${this.timeoutMs} ms (wall-clock limit)` : `the worker exited (${code}) without an answer`));
      }
    });
    return w;
  }

  #message(w, m) {
    const j = w.job;
    if (!j || m.id !== j.id) return;
    if (m.started) {
      if (j.limited && this.timeoutMs) {
        // Past the limit: terminate the Worker; its 'exit' frees what it held and answers.
        j.timer = setTimeout(() => {
          j.overdue = true;
          w.worker.terminate();
        }, this.timeoutMs);
      }
    } else if (m.held) {
      if (m.held.fd !== null) w.fds.add(m.held.fd);
      if (m.held.staging) w.staged.add(m.held.staging);
    } else if (m.released) {
      w.fds.delete(m.released.fd);
      w.staged.delete(m.released.staging);
    } else if (m.done) {
      const d = m.done;
      this.instantiateMs.push(d.instantiateMs);
      this.#end(w, (job) => {
        // An answer that came after the limit fails too: the main thread may take 'started' and
        // 'done' in one turn (busy, or a fast unit), before the timer could fire.
        if (job.limited && this.timeoutMs && d.ranMs > this.timeoutMs) {
          job.reject(new UnitError(job.unit, `stopped: still running after ${this.timeoutMs} ms (wall-clock limit)`));
        } else if ('value' in d) job.resolve(d.value);
        else if (d.error) job.reject(new UnitError(job.unit, describe(d.error), d.error));
        else job.reject(new UnitError(job.unit, `the migration engine stopped (a bug; please report it): ${d.trap}`));
      });
    }
  }

  /** Ends the Worker's current job with `answer` and returns the Worker to the pool. */
  #end(w, answer) {
    const j = w.job;
    if (!j) return;
    clearTimeout(j.timer);
    w.job = null;
    this.idle.push(w);
    answer(j);
  }
}

/** Closes descriptors and removes staged files a stopped Worker left. */
function release(w) {
  for (const fd of w.fds) {
    try {
      fs.closeSync(fd);
    } catch {}
  }
  for (const f of w.staged) fs.rmSync(f, { force: true });
  w.fds.clear();
  w.staged.clear();
}
