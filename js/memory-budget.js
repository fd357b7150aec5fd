// How much WebAssembly memory an EMA needs, and how much it can have.
//
// A wasm32 memory addresses 4 GiB. The C heap reads its size as pages x 64 KiB
// in a 32-bit size_t, which wraps to 0 at 65536 pages, and from then on every
// malloc fails; so memories here stop one page short of 4 GiB. Sizes are
// checked against that before anything is allocated, so a model too large
// for the arena is a RangeError that says how many bytes it needs, not a
// failed malloc halfway through.

import { formatBytes } from './describe.js';

export const PAGE_BYTES = 65536;
export const MAX_PAGES = 65535;
export const USABLE_BYTES = MAX_PAGES * PAGE_BYTES;
const WASM32_BYTES = 2 ** 32;

// The module's static data and stack (-sINITIAL_MEMORY=1MB in CMakeLists.txt).
const CORE_RESERVED_BYTES = 1 << 20;
const ARENA_ALIGNMENT = 64; // EMA_ARENA_ALIGNMENT in src/arena.h
const STAGING_BYTES = 65536 * 4; // EMA_STAGING_FLOATS floats
const SEGMENT_TABLE_BYTES = 4096 * 12; // EMA_SEGMENT_CAPACITY x { slot, offset, count }
// Allocator headers, alignment padding and the context struct: generous.
const BLOCK_SLACK_BYTES = 256;
const PER_ARRAY_BYTES = 8; // a region's length (uint32) and offset (size_t) per array

/** Bytes of one region of float arrays (shadows, a backup): 64-byte aligned blocks. */
export function regionBytes(lengths) {
  let bytes = 3 * BLOCK_SLACK_BYTES;
  for (const length of lengths) {
    bytes += Math.ceil((length * 4) / ARENA_ALIGNMENT) * ARENA_ALIGNMENT + PER_ARRAY_BYTES;
  }
  return bytes;
}

/**
 * Bytes an EMA needs at creation: the core, staging, and the shadows, once
 * per profile (and twice more when resident: the parameters and their backup).
 */
export function creationBytes(shadowLengths, resident, profiles = 1) {
  const shadows = regionBytes(shadowLengths);
  return CORE_RESERVED_BYTES + STAGING_BYTES + SEGMENT_TABLE_BYTES + 4 * BLOCK_SLACK_BYTES + shadows * (profiles + (resident ? 2 : 0));
}

/** Bytes of memory in use for an arena of `arenaBytes` (ema_byte_length): it plus the core's own. */
export function inUseBytes(arenaBytes) {
  return CORE_RESERVED_BYTES + arenaBytes;
}

/** Pages to create a memory with: `bytes`, capped at the limit. */
export function pagesFor(bytes) {
  return Math.min(MAX_PAGES, Math.ceil(bytes / PAGE_BYTES));
}

/** The message for `what` needing `needed` bytes that the memory cannot give. */
export function tooLargeMessage(method, what, needed, inUse = 0) {
  const beside = inUse > 0 ? ` beside the ${formatBytes(inUse)} this EMA already uses` : '';
  return (
    `ema-wasm: ${method}: not enough WebAssembly memory for ${what}: ${formatBytes(needed)} needed${beside}; ` +
    `a wasm32 memory holds at most 4 GiB (${WASM32_BYTES.toLocaleString('en-US')} bytes, ` +
    `of which ${USABLE_BYTES.toLocaleString('en-US')} are usable here)`
  );
}

/** Throws a RangeError unless `needed` more bytes can fit beside `inUse`. */
export function checkFits(method, what, needed, inUse = 0) {
  if (inUse + needed > USABLE_BYTES) {
    throw new RangeError(tooLargeMessage(method, what, needed, inUse));
  }
}
