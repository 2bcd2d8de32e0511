// The `blob-store` import over node:fs, synchronous: files by role under two granted roots,
// written atomically (staged, then renamed), each with its CRC-32C as the bytes pass.
// What it must guarantee is wit/README.md, "blob-store"; the native host is the reference.
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { wasmError } from './errors.mjs';

/** The read cap of the contract: no single read returns more. */
const MAX_READ = 16 << 20;
/** Bytes per step of `append-from`. */
const COPY_STEP = 4 << 20;
/** Staged files carry this mark; `list-dir` never shows them. */
const STAGED = '#staging-';

/**
 * Refuses what the contract refuses (empty, absolute, `.` or `..` segments) and returns the
 * path under the role's root.
 */
function resolve(roots, role, p) {
  const root = roots[role];
  if (!root) throw wasmError('access-denied', `${role}: no ${role} store was granted`);
  if (p === '' || p.startsWith('/') || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw wasmError('access-denied', `${role} ${JSON.stringify(p)}: not a path inside the ${role} root`);
  }
  return path.join(root, ...p.split('/'));
}

/** A node:fs failure as the WIT error, naming the path. */
function fsError(e, role, p) {
  const what = `${role} ${p}`;
  switch (e.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return wasmError('not-found', `${what}: no such file`);
    case 'EACCES':
    case 'EPERM':
      return wasmError('access-denied', `${what}: ${e.message}`);
    case 'EEXIST':
      return wasmError('already-exists', `${what}: exists already`);
    default:
      return wasmError('other', `${what}: ${e.message}`);
  }
}

/** Runs `f`, turning node:fs errors into WIT errors. */
function io(role, p, f) {
  try {
    return f();
  } catch (e) {
    throw e && e.payload ? e : fsError(e, role, p);
  }
}

/** The index of the first little-endian f32 of `bytes` that is NaN or infinite, or -1. */
function firstNonFinite(bytes) {
  // A copy into an aligned buffer when the view is not (typed arrays need 4-byte alignment).
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  const u = new Uint32Array(aligned.buffer, aligned.byteOffset, bytes.length >> 2);
  // All exponent bits set: NaN or ±infinity. Integer tests are the fastest check in V8.
  for (let i = 0; i < u.length; i++) {
    if ((u[i] & 0x7f800000) === 0x7f800000) return i;
  }
  return -1;
}

/**
 * The blob-store interface for one instance. `roots` = { source, target } directories;
 * `tracker` is told of every descriptor and staged file, so that the host can clean up after a
 * trap (jco drops nothing when an instance traps).
 */
export function blobStore(roots, tracker, { faultAfterWrites = 0 } = {}) {
  let staged = 0;
  let writes = 0;
  // One buffer for append-from's copies: no zero-fill, and 4-aligned for the f32 check.
  const scratch = Buffer.allocUnsafeSlow(COPY_STEP);
  // Test hook: after this many writes, fail like a broken host (a plain Error, not a WIT error),
  // which traps the instance.
  const fault = () => {
    if (faultAfterWrites && ++writes > faultAfterWrites) throw new Error(`injected host fault after ${faultAfterWrites} writes`);
  };

  class Reader {
    constructor(role, p, full) {
      this.role = role;
      this.path = p;
      this.fd = io(role, p, () => fs.openSync(full, 'r'));
      this.openedFd = this.fd;
      tracker.opened(this);
      this.length = BigInt(fs.fstatSync(this.fd).size);
      this.pos = 0n;
    }
    size() {
      return this.length;
    }
    read(max) {
      const left = this.length - this.pos;
      const n = Math.min(max, MAX_READ, Number(left < BigInt(MAX_READ) ? left : BigInt(MAX_READ)));
      return this.readInto(new Uint8Array(Math.max(n, 0)));
    }
    /** Reads up to `buf.length` bytes into `buf` (the host's own copies skip the component). */
    readInto(buf) {
      const n = Number(BigInt(buf.length) < this.length - this.pos ? BigInt(buf.length) : this.length - this.pos);
      if (n <= 0) return buf.subarray(0, 0);
      const got = io(this.role, this.path, () => fs.readSync(this.fd, buf, 0, n, Number(this.pos)));
      this.pos += BigInt(got);
      return buf.subarray(0, got);
    }
    seek(offset) {
      if (offset > this.length) throw wasmError('other', `seek to ${offset} past the end (${this.length}) of ${this.path}`);
      this.pos = offset;
    }
    close() {
      if (this.fd !== null) {
        fs.closeSync(this.fd);
        this.fd = null;
        tracker.closed(this);
      }
    }
    [Symbol.dispose]() {
      this.close();
    }
  }

  class Writer {
    constructor(role, p, full, createOnly) {
      this.role = role;
      this.path = p;
      this.full = full;
      this.createOnly = createOnly;
      this.staging = `${full}${STAGED}${process.pid}-${++staged}`;
      io(role, p, () => fs.mkdirSync(path.dirname(full), { recursive: true }));
      this.fd = io(role, p, () => fs.openSync(this.staging, 'wx'));
      this.openedFd = this.fd;
      tracker.opened(this);
      this.bytes = 0n;
      this.crc = 0;
    }
    write(bytes) {
      this.#put(bytes);
    }
    #put(bytes) {
      fault();
      io(this.role, this.path, () => {
        let off = 0;
        while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
      });
      this.crc = crc32c(bytes, this.crc);
      this.bytes += BigInt(bytes.length);
    }
    appendFrom(src, offset, len, check) {
      src.seek(offset);
      let done = 0n;
      while (done < len) {
        const want = Number(len - done < BigInt(COPY_STEP) ? len - done : BigInt(COPY_STEP));
        const chunk = src.readInto(scratch.subarray(0, want));
        if (chunk.length === 0) throw wasmError('other', `${src.path}: ends at ${src.pos}, before ${offset + len}`);
        if (check === 'finite-f32') {
          const bad = firstNonFinite(chunk);
          if (bad >= 0) {
            this.#put(chunk.subarray(0, bad * 4));
            return offset + done + BigInt(bad * 4);
          }
        }
        this.#put(chunk);
        done += BigInt(chunk.length);
      }
      return undefined;
    }
    finish() {
      io(this.role, this.path, () => {
        fs.fsyncSync(this.fd);
        this.#close();
        if (this.createOnly) {
          // An atomic no-replace publish: link fails when anything is at the path.
          try {
            fs.linkSync(this.staging, this.full);
          } finally {
            fs.rmSync(this.staging, { force: true });
          }
        } else {
          fs.renameSync(this.staging, this.full);
        }
        tracker.published(this);
      });
      return { path: this.path, bytes: this.bytes, crc32c: this.crc };
    }
    #close() {
      if (this.fd !== null) {
        fs.closeSync(this.fd);
        this.fd = null;
      }
    }
    /** Dropped without `finish`: nothing is published, the staged bytes go. */
    abort() {
      this.#close();
      fs.rmSync(this.staging, { force: true });
      tracker.closed(this);
    }
    [Symbol.dispose]() {
      if (this.fd !== null) this.abort();
    }
  }

  return {
    Reader,
    Writer,
    open: (role, p) => new Reader(role, p, resolve(roots, role, p)),
    create: (role, p) => new Writer(role, p, resolve(roots, role, p), false),
    createNew: (role, p) => new Writer(role, p, resolve(roots, role, p), true),
    stat(role, p) {
      const full = resolve(roots, role, p);
      const st = io(role, p, () => fs.statSync(full, { throwIfNoEntry: false }));
      return st && st.isFile() ? BigInt(st.size) : undefined;
    },
    listDir(role, prefix) {
      const full = resolve(roots, role, prefix);
      let names;
      try {
        names = fs.readdirSync(full);
      } catch (e) {
        if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return [];
        throw fsError(e, role, prefix);
      }
      // Sorted bytewise, as the contract says (JS's default sort is by UTF-16 units).
      return names.filter((n) => !n.includes(STAGED)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    },
    delete(role, p) {
      const full = resolve(roots, role, p);
      io(role, p, () => fs.rmSync(full, { force: true }));
    },
    checksum(role, p) {
      const r = new Reader(role, p, resolve(roots, role, p));
      try {
        let crc = 0;
        let bytes = 0n;
        for (let chunk = r.read(MAX_READ); chunk.length > 0; chunk = r.read(MAX_READ)) {
          crc = crc32c(chunk, crc);
          bytes += BigInt(chunk.length);
        }
        return { path: p, bytes, crc32c: crc };
      } finally {
        r.close();
      }
    },
  };
}
