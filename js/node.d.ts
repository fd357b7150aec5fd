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
/** Writes snapshots (ema.snapshot()'s) into `folder` (created when missing), each atomically under its name; resolves to the paths. */
export declare function writeSnapshots(folder: string, snapshots: readonly Snapshot[]): Promise<string[]>;
/** Reads and checks every snapshot in `folder`, in name order (step, then profile). */
export declare function readSnapshots(folder: string, options?: { simd?: 'auto' | boolean; wasm?: WasmSource }): Promise<(ReadSnapshot & { readonly name: string })[]>;
