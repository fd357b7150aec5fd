// WasmCore: one instance of the C core and the typed-array views over its
// memory. Views die when memory grows, so they are never kept by callers:
// every accessor checks that its cached view still belongs to the current
// buffer and re-makes it if not.

import { tooLargeMessage } from './memory-budget.js';

/** The status codes JS reacts to (include/ema_status.h; numbers are pinned). */
export const STATUS = Object.freeze({
  OK: 0,
  OUT_OF_MEMORY: 3,
  NOTHING_STORED: 7,
  TOO_MANY_SLOTS: 8,
  TOO_LARGE: 9,
  COUNTER_OVERFLOW: 12,
});

// Statuses that mean a size or count is past a limit: RangeError, like JS's own.
const RANGE_STATUSES = new Set([STATUS.OUT_OF_MEMORY, STATUS.TOO_MANY_SLOTS, STATUS.TOO_LARGE, STATUS.COUNTER_OVERFLOW]);

export class WasmCore {
  constructor({ exports, memory, module }) {
    this.exports = exports;
    this.memory = memory;
    this.module = module; // compiled once, shared: the safetensors parser of this EMA uses it too
    this.f32View = new Float32Array(this.memory.buffer);
    this.u32View = new Uint32Array(this.memory.buffer);
  }

  /** Float32 view of all of memory, valid until the next call that allocates. */
  get heapF32() {
    if (this.f32View.buffer !== this.memory.buffer) {
      this.f32View = new Float32Array(this.memory.buffer);
    }
    return this.f32View;
  }

  get heapU32() {
    if (this.u32View.buffer !== this.memory.buffer) {
      this.u32View = new Uint32Array(this.memory.buffer);
    }
    return this.u32View;
  }

  /** Allocates `byteLength` bytes in linear memory (may grow it). */
  malloc(byteLength, method = 'ema-wasm') {
    // >>> 0: Wasm returns pointers as i32, negative above 2 GiB.
    const pointer = this.exports.malloc(Math.max(byteLength, 4)) >>> 0;
    if (pointer === 0) {
      throw new RangeError(tooLargeMessage(method, 'working space', byteLength, this.memory.buffer.byteLength));
    }
    return pointer;
  }

  free(pointer) {
    this.exports.free(pointer);
  }

  /** Copies a list of uint32 into freshly allocated memory; free it after. */
  mallocU32(values, method) {
    const pointer = this.malloc(values.length * 4, method);
    this.heapU32.set(values, pointer >>> 2);
    return pointer;
  }

  statusString(status) {
    const pointer = this.exports.ema_status_string(status);
    const bytes = new Uint8Array(this.memory.buffer, pointer);
    return new TextDecoder().decode(new Uint8Array(this.memory.buffer, pointer, bytes.indexOf(0)));
  }

  /** Throws when a C call did not return EMA_OK. */
  check(status, what) {
    if (status === STATUS.OK) return;
    const message = `ema-wasm: ${what} failed: ${this.statusString(status)} (status ${status})`;
    throw RANGE_STATUSES.has(status) ? new RangeError(message) : new Error(message);
  }
}
