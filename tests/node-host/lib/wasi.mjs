// The WASI that Rust's std links into the component (stdio for panic output, environment,
// exit) and a hash seed, empty like the native host's context: no environment or arguments, no terminal, input
// at its end, output discarded (the engine reports through `report`), and `exit` throws instead
// of ending the embedding process. Written here rather than taken from
// @bytecodealliance/preview2-shim, which would show the guest this process' environment and
// stdio and let it end the process.

class Pollable {
  ready() { return true; }
  block() {}
}

class IoError {
  toDebugString() { return 'the component has no stdio here'; }
}

class InputStream {
  read() { throw { tag: 'closed' }; }
  blockingRead() { throw { tag: 'closed' }; }
  skip() { throw { tag: 'closed' }; }
  blockingSkip() { throw { tag: 'closed' }; }
  subscribe() { return new Pollable(); }
}

class OutputStream {
  checkWrite() { return 1n << 20n; }
  write() {}
  blockingWriteAndFlush() {}
  flush() {}
  blockingFlush() {}
  writeZeroes() {}
  blockingWriteZeroesAndFlush() {}
  subscribe() { return new Pollable(); }
}

class TerminalInput {}
class TerminalOutput {}

const input = new InputStream();
const sink = new OutputStream();

/** The imports, keyed as jco's glue reads them. */
export const wasi = {
  'wasi:cli/environment': { getEnvironment: () => [], getArguments: () => [], initialCwd: () => undefined },
  'wasi:cli/exit': {
    exit: (status) => {
      throw new Error(`the component called exit (${status?.tag ?? status}); hosts do not let it end the process`);
    },
  },
  'wasi:cli/stdin': { getStdin: () => input },
  'wasi:cli/stdout': { getStdout: () => sink },
  'wasi:cli/stderr': { getStderr: () => sink },
  'wasi:cli/terminal-input': { TerminalInput },
  'wasi:cli/terminal-output': { TerminalOutput },
  'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
  'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
  'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
  'wasi:io/error': { Error: IoError },
  'wasi:io/poll': { Pollable, poll: (list) => new Uint32Array(list.map((_, i) => i)) },
  'wasi:io/streams': { InputStream, OutputStream },
  // The seed of the engine's hash maps (the Parquet writer's): not a secret, any value will do.
  'wasi:random/insecure-seed': { insecureSeed: () => [0x9e3779b97f4a7c15n, 0xbf58476d1ce4e5b9n] },
};
