// Types for ema-wasm. The implementation is plain ESM in js/*.js.

/** One parameter tensor: its name, its values, and optionally shape and trainability. */
export interface ParamEntry {
  /** Unique, non-empty name such as `'layer1.weight'`. */
  name: string;
  /** The parameter's values. Only Float32Array is accepted. */
  data: Float32Array;
  /** Shape of the tensor; its product must equal `data.length`. Defaults to `[data.length]`. */
  shape?: number[];
  /** Untrainable parameters are not tracked (as in LitEma). Defaults to true. */
  trainable?: boolean;
}

/**
 * Parameters, in any of three forms: an array of entries, a Map from name to
 * values, or a plain object from name to values (Map and object entries are
 * all trainable).
 */
export type Params = readonly ParamEntry[] | ReadonlyMap<string, Float32Array> | { readonly [name: string]: Float32Array };

export interface EmaOptions {
  /** Base decay in [0, 1]; stored as float32. Default 0.9999. */
  decay?: number;
  /** LitEma's warmup: decay = min(decay, (1 + n) / (10 + n)) after n updates. Default true. */
  useNumUpdates?: boolean;
  /** `'auto'` (default) picks the SIMD128 build when the runtime supports it; true/false force one. */
  simd?: 'auto' | boolean;
}

/** LitEma's state_dict: `decay`, `num_updates`, then each shadow under its name with dots removed. */
export type StateDict = Map<string, Float32Array | Int32Array>;

export declare class Ema {
  private constructor();

  /** The base decay, as the float32 value LitEma stores. */
  readonly decay: number;
  /** Updates since creation or the last reset; -1 when warmup is off. */
  readonly numUpdates: number;
  /** Tracked (trainable) parameter names, in creation order. */
  readonly names: string[];
  /** True when the SIMD128 build runs, false for the scalar build. */
  readonly simd: boolean;
  /** Bytes the arena holds in WebAssembly memory (shadows, staging window, backup). */
  readonly byteLength: number;

  /**
   * One EMA step over every tracked parameter (LitEma.forward). Every tracked
   * name must be present with its length; untrainable entries are skipped.
   * Returns the decay the step used.
   */
  update(params: Params): number;
  /** Writes every shadow into its array in place (LitEma.copy_to). */
  copyTo(params: Params): void;
  /** Snapshots every given array, trainable or not (LitEma.store). Replaces an earlier snapshot. */
  store(params: Params): void;
  /** Writes the snapshot back, matched by name; names and lengths must match the store. Throws if nothing was stored. */
  restore(params: Params): void;
  /** store, copyTo, `await fn()`, then restore even if fn throws (LitEma's ema_scope). */
  withEma<T>(params: Params, fn: () => T | Promise<T>): Promise<T>;
  /** Sets the update counter to 0, turning warmup on (LitEma.reset_num_updates). */
  resetNumUpdates(): void;
  /** A copy of one shadow. */
  shadow(name: string): Float32Array;
  /** The shape given for a tracked parameter (a copy). */
  shape(name: string): number[];
  /** LitEma's state_dict; every value is a copy. */
  stateDict(): StateDict;
  /** Frees the arena; every later call throws. Repeating it does nothing. */
  dispose(): void;
}

/** Creates an EMA whose shadows start as copies of the trainable parameters. */
export declare function createEma(params: Params, options?: EmaOptions): Promise<Ema>;

/** Whether this runtime supports WebAssembly SIMD128. */
export declare function hasWasmSimd(): boolean;

/** LitEma's buffer name for a parameter: the name with every '.' removed. */
export declare function shadowKey(name: string): string;
