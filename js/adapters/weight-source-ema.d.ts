// Types for what the adapters share (implementation:
// js/adapters/weight-source-ema.js): ema-wasm/tfjs's TfjsEma and ema-wasm/ort's
// OrtEma extend this class and add the calls that read or write the weights,
// synchronous for TF.js, asynchronous for onnxruntime-web.
import type { Ema, Profile, ProfileOptions, SaveOptions, Snapshot, SnapshotOptions, StateDict } from '../index.js';

/** An EMA of weights that live outside it (TF.js variables, an onnxruntime-web session). */
export declare abstract class WeightSourceEma {
  protected constructor();
  /** The underlying core EMA, for advanced use. Its store/restore share this adapter's snapshot. */
  readonly ema: Ema;
  /** Updates since creation or the last reset; -1 when warmup is off. */
  readonly numUpdates: number;
  /** The base decay, as the float32 value LitEma stores. */
  readonly decay: number;
  /** The names of the tracked weights, in order. */
  readonly names: string[];
  /** True when a SIMD128 build runs (the SIMD128 or the threads build), false for the scalar build. */
  readonly simd: boolean;
  /** Which build runs: `'threads'`, `'simd'` or `'scalar'`. */
  readonly build: 'threads' | 'simd' | 'scalar';
  /** Threads an update uses: 1, or the calling thread and the live workers. */
  readonly threads: number;
  /** Whether update() returns before the averaging ends (`background: true` with workers running). */
  readonly background: boolean;
  /** The power recipe's profiles; null for other recipes. */
  readonly profiles: Profile[] | null;
  /** Updates that averaged or copied. */
  readonly steps: number;

  /**
   * store, copyTo, `await fn()`, then restore even if fn throws (LitEma's
   * ema_scope). Returns what fn returns. The weights are held until the
   * training weights are back: meanwhile every call of any EMA of them that
   * reads or writes them is refused.
   */
  withEma<T>(fn: () => T | Promise<T>, options?: ProfileOptions): Promise<T>;
  /** A copy of the EMA weights of one tracked weight, by name (of `profile`). */
  shadow(name: string, options?: ProfileOptions): Float32Array;
  /** LitEma's state_dict: `decay`, `num_updates`, then each shadow; every value is a copy. */
  stateDict(options?: ProfileOptions): StateDict;
  /** Power recipe: one snapshot per profile, for reconstruct(). */
  snapshot(options?: SnapshotOptions): Snapshot[];
  /** Sets the update counter to 0, turning warmup on (LitEma.reset_num_updates). */
  resetNumUpdates(): void;
  /** The EMA as a safetensors file, as Ema.save writes it. */
  save(options?: SaveOptions): Uint8Array;
  /**
   * Loads a safetensors file (from save() or PyTorch) into the EMA; all or
   * nothing. The weights are not touched: copyTo() writes the loaded shadows
   * into them.
   */
  loadState(bytes: Uint8Array, options?: { prefix?: string; strict?: boolean }): Promise<void>;
  /** Frees the arena; every later call throws. Repeating it does nothing. The weights are not touched. */
  dispose(): void;
}
