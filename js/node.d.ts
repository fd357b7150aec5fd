// Types for ema-wasm/node: files on disk.
import type { Ema, LoadOptions, ReadSnapshot, SaveOptions, Snapshot, WasmSource } from './index.js';

/** Writes bytes to path atomically: temporary file in the same folder, fsync, rename. */
export declare function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void>;
/** Saves the EMA as a safetensors file, atomically; resolves to its size in bytes. */
export declare function saveEmaFile(ema: Ema, path: string, options?: SaveOptions): Promise<number>;
/** Builds a new EMA from a safetensors file. */
export declare function loadEmaFile(path: string, options?: LoadOptions): Promise<Ema>;
/** Loads a safetensors file into an existing EMA; all or nothing. */
export declare function loadEmaStateFile(ema: Ema, path: string, options?: { prefix?: string; strict?: boolean }): Promise<void>;
/**
 * Writes snapshots (ema.snapshot()'s, or readSnapshots()') into `folder` (created when missing), each atomically under
 * its name; resolves to the paths. Every snapshot is checked first (as readSnapshot checks one, its name against its
 * step and profile); a refused call writes nothing. `options` picks the module that checks them.
 */
export declare function writeSnapshots(folder: string, snapshots: readonly Snapshot[], options?: { simd?: 'auto' | boolean; wasm?: WasmSource }): Promise<string[]>;
/**
 * Reads and checks every snapshot in `folder`, in name order (step, then profile). An entry with a snapshot's name
 * that is not a regular file, or a file over 2 GiB - 1 bytes, is refused; file-system errors carry the original as `cause`.
 */
export declare function readSnapshots(folder: string, options?: { simd?: 'auto' | boolean; wasm?: WasmSource }): Promise<(ReadSnapshot & { readonly name: string })[]>;
