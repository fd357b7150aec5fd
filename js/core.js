// WasmCore: one instance of the C core and the typed-array views over its
// memory. Views die when memory grows, so they are never kept by callers:
// every accessor checks that its cached view still belongs to the current
// buffer and re-makes it if not.

/** The status codes JS reacts to (include/ema_status.h; numbers are pinned). */
export const STATUS = Object.freeze({ OK: 0, OUT_OF_MEMORY: 3, NOTHING_STORED: 7 });

export class WasmCore {
  constructor({ exports, memory }) {
    this.exports = exports;
    this.memory = memory;
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
  malloc(byteLength) {
    const pointer = this.exports.malloc(Math.max(byteLength, 4));
    if (pointer === 0) {
      throw new RangeError(`ema-wasm: out of WebAssembly memory allocating ${byteLength} bytes`);
    }
    return pointer;
  }

  free(pointer) {
    this.exports.free(pointer);
  }

  /** Copies a list of uint32 into freshly allocated memory; free it after. */
  mallocU32(values) {
    const pointer = this.malloc(values.length * 4);
    this.heapU32.set(values, pointer >>> 2);
    return pointer;
  }

  statusString(status) {
    const pointer = this.exports.ema_status_string(status);
    const bytes = new Uint8Array(this.memory.buffer, pointer);
    const end = bytes.indexOf(0);
    return new TextDecoder().decode(bytes.subarray(0, end));
  }

  /** Throws when a C call did not return EMA_OK. */
  check(status, what) {
    if (status === STATUS.OK) return;
    const message = `ema-wasm: ${what} failed: ${this.statusString(status)} (status ${status})`;
    throw status === STATUS.OUT_OF_MEMORY ? new RangeError(message) : new Error(message);
  }
}
