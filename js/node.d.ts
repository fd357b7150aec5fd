// Types for ema-wasm/node: files on disk.
import type { Ema, LoadOptions, SaveOptions } from './index.js';

/** Writes bytes to path atomically: temporary file in the same folder, fsync, rename. */
export declare function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void>;
/** Saves the EMA as a safetensors file, atomically; resolves to its size in bytes. */
export declare function saveEmaFile(ema: Ema, path: string, options?: SaveOptions): Promise<number>;
/** Builds a new EMA from a safetensors file. */
export declare function loadEmaFile(path: string, options?: LoadOptions): Promise<Ema>;
/** Loads a safetensors file into an existing EMA; all or nothing. */
export declare function loadEmaStateFile(ema: Ema, path: string, options?: { prefix?: string; strict?: boolean }): Promise<void>;
