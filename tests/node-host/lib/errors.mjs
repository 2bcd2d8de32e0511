// Errors across the boundary: an import returns the WIT `error` by throwing an object whose
// `payload` is the variant (jco turns anything else into a trap); an export's error comes back
// the same way (jco's ComponentError carries `payload`).

/** The WIT `error` variant `tag` with `val`, thrown by an import. */
export class WasmError extends Error {
  constructor(tag, val) {
    super(`${tag}: ${typeof val === 'string' ? val : JSON.stringify(val)}`);
    this.payload = { tag, val };
  }
}

export const wasmError = (tag, val) => new WasmError(tag, val);

/** A readable line for an error variant, like the native host's. */
export function describe(payload) {
  const { tag, val } = payload;
  if (tag === 'invalid-input') {
    return `invalid input: ${val.file}${val.offset !== undefined ? ` at byte ${val.offset}` : ''}: ${val.reason}`;
  }
  if (tag === 'remote') return `Milvus answered ${val.code}: ${val.reason}`;
  return `${tag}: ${val}`;
}
