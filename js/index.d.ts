// Types for ema-wasm. The implementation is plain ESM in js/*.js.

/** One parameter (or buffer) tensor: its name, its values, and optionally shape, trainability and kind. */
export type ParamEntry = FloatEntry | IntegerBufferEntry;

export interface FloatEntry {
  /** Unique, non-empty name such as `'layer1.weight'`. */
  name: string;
  /** The values. */
  data: Float32Array;
  /** Shape of the tensor; its product must equal `data.length`. Defaults to `[data.length]`. */
  shape?: number[];
  /** false: a frozen parameter (LitEma skips it; each recipe does as its library). Defaults to true. */
  trainable?: boolean;
  /** true: a buffer (BatchNorm's statistics), not a parameter. Defaults to false. */
  buffer?: boolean;
}

/**
 * An integer buffer (BatchNorm's num_batches_tracked): recipes that keep it
 * copy it bit for bit. `buffer` must be true (checked at run time; typed
 * boolean so that an array literal, whose `true` widens, is accepted).
 */
export interface IntegerBufferEntry {
  name: string;
  data: Int32Array | BigInt64Array;
  shape?: number[];
  trainable?: boolean;
  buffer: boolean;
}

/** update()'s options: timm's `step` (the `step` argument of ModelEmaV3.update; timm only), or the power recipe's `samples` in this step. */
export interface UpdateOptions {
  step?: number;
  samples?: number;
}

/**
 * Parameters, in any of three forms: an array of entries, a Map from name to
 * values, or a plain object from name to values (Map and object entries are
 * all trainable).
 */
export type Params = readonly ParamEntry[] | ReadonlyMap<string, Float32Array> | { readonly [name: string]: Float32Array };

/** The reference libraries whose EMA createEma can follow (`options.recipe`). */
export type RecipeName = 'litema' | 'torch_ema' | 'diffusers' | 'timm' | 'ema-pytorch' | 'keras' | 'debiased' | 'power';

export interface EmaOptions {
  /** Which reference library's EMA to follow. Default `'litema'`. */
  recipe?: RecipeName;
  /**
   * A parameter holding NaN or an infinity: `'allow'` (default) averages it
   * as the reference does, `'skip'` skips the step (nothing changes; update()
   * reports `nonFinite: true`), `'throw'` refuses the step with a RangeError.
   */
  nonFinite?: 'allow' | 'skip' | 'throw';
  /** Base decay in [0, 1] (litema, torch_ema, diffusers, timm, debiased); LitEma stores it as float32. Default 0.9999. */
  decay?: number;
  /** LitEma's and torch_ema's warmup: decay = min(decay, (1 + n) / (10 + n)) after n updates. Default true. */
  useNumUpdates?: boolean;
  // Each recipe's own options, under the reference's names in camelCase;
  // giving one the chosen recipe does not have is a TypeError.
  /** diffusers, timm: the least decay. Default 0. */
  minDecay?: number;
  /** diffusers, timm, ema-pytorch: steps before averaging starts. Default 0 (ema-pytorch: 100). */
  updateAfterStep?: number;
  /** diffusers: the 1 - (1 + step / invGamma)^-power warmup. Default false. */
  useEmaWarmup?: boolean;
  /** diffusers, ema-pytorch: the warmup's inv_gamma. Default 1. */
  invGamma?: number;
  /** diffusers, ema-pytorch: the warmup's power. Default 2/3. */
  power?: number;
  /** diffusers: foreach's fused rounding. Default false. */
  foreach?: boolean;
  /** timm: the warmup. Default false. */
  useWarmup?: boolean;
  /** timm: the warmup's gamma. Default 1. */
  warmupGamma?: number;
  /** timm: the warmup's power. Default 2/3. */
  warmupPower?: number;
  /** timm: buffers are copied, not averaged. Default false. */
  excludeBuffers?: boolean;
  /** ema-pytorch: the base decay. Default 0.9999. */
  beta?: number;
  /** ema-pytorch: average every this many steps. Default 10. */
  updateEvery?: number;
  /** ema-pytorch: the least decay. Default 0. */
  minValue?: number;
  /** ema-pytorch: entries copied, never averaged. */
  paramOrBufferNamesNoEma?: readonly string[];
  /** ema-pytorch: entries never averaged (only whole-model copies write them). */
  ignoreNames?: readonly string[];
  /** ema-pytorch: name prefixes of entries never averaged (only whole-model copies write them). */
  ignoreStartswithNames?: readonly string[];
  /** keras: the ema_momentum. Default 0.99. */
  emaMomentum?: number;
  /** keras: every this many steps the averages overwrite the weights; null (default) never. */
  emaOverwriteFrequency?: number | null;
  /** debiased: the bias correction. Default true. */
  debias?: boolean;
  /**
   * power: the profile's relative width, in (0, sqrt(1/12)]; sets gamma.
   * Default 0.05 when gamma is not given. A list (1 to 16 widths) keeps one
   * profile per width in one EMA, all updated in one pass (post-hoc EMA).
   */
  sigmaRel?: number | readonly number[] | null;
  /** power: the profile's exponent (0 or more), instead of sigmaRel; a list for several profiles. */
  gamma?: number | readonly number[] | null;
  /** power: samples per step when update() gives none. Default 1. */
  batchSize?: number;
  /** `'auto'` (default) picks the SIMD128 build when the runtime supports it; true/false force one. */
  simd?: 'auto' | boolean;
  /**
   * How many threads share each update (the calling one included): `'auto'`
   * (default) runs the threads build on every core where the runtime allows
   * it (Node 20.16+; browsers in a cross-origin isolated page) and the model
   * has at least 2^19 floats (or `background` is true), else one thread; a
   * number from 2 to 64 asks for that many and rejects where the runtime
   * cannot; 1 never starts a worker. Results are bit-identical either way.
   */
  threads?: 'auto' | number;
  /**
   * `update(params)` returns once the parameters are copied; the averaging
   * finishes in the workers while training goes on, and the next call that
   * reads or changes the EMA waits for it (default false). Needs workers:
   * with threads 'auto' where they cannot run, it quietly stays off
   * (`ema.background` says false). Not with `resident: true`.
   */
  background?: boolean;
  /**
   * Keep the parameters themselves in the arena (default false): train in
   * `ema.param(name)` and call `update()`, `copyTo()`, `store()`, `restore()`
   * and `withEma(fn)` without params. No copy-in on update.
   */
  resident?: boolean;
  /**
   * The WebAssembly module to run instead of the built-in one; see {@link WasmSource}.
   * Needed only where the built-in bytes cannot be compiled (a strict
   * Content-Security-Policy) or must come from elsewhere (a CDN).
   */
  wasm?: WasmSource;
}

/**
 * A module handed over in `options.wasm`: a compiled `WebAssembly.Module`,
 * the bytes of `ema-wasm/ema-simd.wasm` or `ema-wasm/ema-scalar.wasm` (an
 * `ArrayBuffer` or a typed array), a `Response` or a promise of one (as
 * `fetch()` gives), or a URL (a `URL`, or a string resolved against the
 * page). Typed as `object | string`: a `WebAssembly.Module` has no members a
 * type could check, and naming it would require the DOM lib. Anything else is
 * a TypeError at run time, and bytes that are not this version's module are
 * an Error that says what came instead.
 */
export type WasmSource = object | string;

/**
 * What one `update()` step did (Ema, ResidentEma and the adapters return it;
 * the onnxruntime-web adapter as a promise).
 */
export interface UpdateResult {
  /**
   * `'averaged'`: the update formula ran;
   * `'copied'`: every shadow became its parameter; `'skipped'`: no shadow
   * changed (ema-pytorch's update_every, or a parameter that was not finite
   * under `nonFinite: 'skip'`, when `nonFinite` is true).
   */
  readonly action: 'averaged' | 'copied' | 'skipped';
  /** The decay the step used, as the reference computes it (LitEma: the float32 value it uses). */
  readonly decay: number;
  /** The float32 `1 - decay` the step applied to the shadows. */
  readonly weight: number;
  /** The recipe's counter after the step (LitEma's num_updates; -1 with warmup off). */
  readonly counter: number;
  /** Keras's emaOverwriteFrequency: the averages were written into the parameters. */
  readonly overwrote: boolean;
  /** The step was skipped because a parameter held NaN or an infinity (`nonFinite: 'skip'`). */
  readonly nonFinite: boolean;
  /** Several power profiles: each one's decay and weight (`decay` and `weight` above are profile 0's). */
  readonly profiles?: readonly { readonly decay: number; readonly weight: number }[];
}

/** Which profile of a power EMA of several a call reads (default 0, the first listed). */
export interface ProfileOptions {
  profile?: number;
}

/** One power-function profile of an EMA. */
export interface Profile {
  /** The relative width given, or null when the profile was given by gamma. */
  readonly sigmaRel: number | null;
  /** The profile's exponent (derived from sigmaRel when that was given). */
  readonly gamma: number;
}

/** One profile's weights at one step, as a safetensors file (ema.snapshot()). */
export interface Snapshot {
  /** The file name writeSnapshots() gives it: step and profile, e.g. 'ema-snapshot-0000001000-profile-0.safetensors'. */
  readonly name: string;
  readonly profile: number;
  readonly sigmaRel: number | null;
  readonly gamma: number;
  /** Updates so far (ema.steps). */
  readonly step: number;
  /** Samples so far (the power recipe's counter): the time reconstruct() works in. */
  readonly samples: number;
  /** Samples per step when update() gives none. */
  readonly batchSize: number;
  /** 'F32' or 'F16'. */
  readonly dtype: 'F32' | 'F16';
  /** The safetensors file. */
  readonly bytes: Uint8Array;
}

/** A snapshot as readSnapshot() and readSnapshots() read it back, checked. */
export interface ReadSnapshot extends Omit<Snapshot, 'name'> {
  readonly name?: string;
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly offset: number; readonly byteLength: number }[];
}

export interface SnapshotOptions {
  /** 'float32' (default) or 'float16' (half the size; rounding of 2^-11 of each weight). */
  dtype?: 'float32' | 'float16';
}

/** reconstruct()'s options: the target's width, as sigmaRel or as gamma (one of them). */
export type ReconstructOptions = ReconstructTarget & {
  /** The time to reconstruct it at, in samples (default: the last snapshot's). */
  at?: number;
  /** Print the warning (if any) with console.warn. Default true. */
  warn?: boolean;
  simd?: 'auto' | boolean;
  wasm?: WasmSource;
};

export type ReconstructTarget =
  /** The relative width of the EMA to reconstruct, in [1e-6, sqrt(1/12)]. */
  | { sigmaRel: number; gamma?: undefined }
  /** The exponent of the EMA to reconstruct. */
  | { gamma: number; sigmaRel?: undefined };

/** What reconstruct() found. */
export interface Reconstruction {
  /** The reconstructed EMA weights, by name (fresh arrays). */
  readonly weights: Map<string, Float32Array>;
  readonly shapes: Map<string, number[]>;
  /** One coefficient per snapshot, in the order given; they sum to 1. */
  readonly coefficients: Float64Array;
  /** The ratio of the largest to the smallest kept singular value of the snapshots' Gram matrix. */
  readonly conditionNumber: number;
  /**
   * How far the snapshots' best mix is from the target profile (relative L2
   * distance): a few thousandths for a good fit; above 0.1 it warns.
   */
  readonly fitError: number;
  /** The sum of the coefficients' magnitudes: how much the snapshots' own rounding is amplified. */
  readonly amplification: number;
  readonly sigmaRel: number | null;
  readonly gamma: number;
  readonly at: number;
  /** Why the result may be unreliable, or null. */
  readonly warning: string | null;
}

/**
 * Post-hoc EMA (Karras et al. 2024): the weights of the power-function EMA of
 * any width at any time, from snapshots of a few profiles.
 */
export declare function reconstruct(snapshots: readonly (Snapshot | ReadSnapshot | Uint8Array)[], options: ReconstructOptions): Promise<Reconstruction>;
/** Reads and checks one snapshot's bytes. */
export declare function readSnapshot(snapshot: Uint8Array | Snapshot, options?: { simd?: 'auto' | boolean; wasm?: WasmSource }): Promise<ReadSnapshot>;
/** The file name of a snapshot of `step` and `profile`. */
export declare function snapshotName(step: number, profile: number): string;

/**
 * An EMA's state: LitEma's `decay`, `num_updates`, then each shadow under its
 * name with dots removed; every other recipe's counters and options under
 * its library's names, then each shadow under its name in its element type.
 */
export type StateDict = Map<string, Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array>;

/** What every kind of EMA has: LitEma's state, checkpoints and disposal. */
export declare abstract class BaseEma {
  protected constructor();

  /** The base decay (ema-pytorch's beta, Keras's ema_momentum); LitEma's as the float32 value it stores. */
  readonly decay: number;
  /** The recipe's counter (see `counter`); for LitEma, updates since creation or reset, -1 with warmup off. */
  readonly numUpdates: number;
  /**
   * The recipe's counter: LitEma's and torch_ema's num_updates (-1 with
   * warmup off), diffusers' optimization_step, ema-pytorch's step, Keras's
   * iterations, the debiased EMA's count, timm's update calls.
   */
  readonly counter: number;
  /** Which library's EMA this follows. */
  readonly recipe: RecipeName;
  /** Every option of the recipe, defaults included (a fresh object). */
  readonly options: Record<string, unknown>;
  /** Tracked names (every entry the recipe keeps), in creation order. */
  readonly names: string[];
  /** True when a SIMD128 build runs (the SIMD128 or the threads build), false for the scalar build. */
  readonly simd: boolean;
  /** Which build runs: `'threads'`, `'simd'` or `'scalar'`. */
  readonly build: 'threads' | 'simd' | 'scalar';
  /** Threads an update uses: 1, or the calling thread and the live workers. */
  readonly threads: number;
  /** Whether update() returns before the averaging ends (`background: true` with workers running). */
  readonly background: boolean;
  /** Bytes the arena holds in WebAssembly memory (shadows, staging window, backup). */
  readonly byteLength: number;
  /** True for a ResidentEma (created with `resident: true`). */
  readonly resident: boolean;
  /** The power recipe's profiles, one per width given; null for other recipes. */
  readonly profiles: Profile[] | null;
  /** Updates that averaged or copied (the training step); the power recipe saves it. */
  readonly steps: number;

  /** Sets the update counter to 0, turning warmup on (LitEma.reset_num_updates). */
  resetNumUpdates(): void;
  /**
   * A copy of one shadow (debiased: bias-corrected). An integer buffer's
   * comes back in its own type: name it, `ema.shadow<BigInt64Array>(name)`.
   */
  shadow<T extends Float32Array | Int32Array | BigInt64Array = Float32Array>(name: string, options?: ProfileOptions): T;
  /** The shape given for a tracked parameter (a copy). */
  shape(name: string): number[];
  /**
   * LitEma's state_dict; every value is a copy. Several power profiles:
   * every profile's (sigma_rel and gamma lists, shadows under
   * 'profiles.<k>.'), or with `profile` that profile's alone.
   */
  stateDict(options?: ProfileOptions): StateDict;
  /** Power recipe: one snapshot per profile of the weights now, for reconstruct(). */
  snapshot(options?: SnapshotOptions): Snapshot[];
  /**
   * LitEma's load_state_dict. `state` is a Map or object as stateDict() returns
   * (decay and num_updates may also be plain numbers). strict (default true):
   * exactly the tracked keys; otherwise what is present is loaded and unknown
   * keys are ignored. All or nothing: a failed call changes nothing.
   */
  loadStateDict(state: StateDictInput, options?: { strict?: boolean }): void;
  /**
   * The state as a safetensors file: `<prefix>decay` (F32 scalar),
   * `<prefix>num_updates` (I32 scalar), each shadow as F32 with its shape. The
   * metadata records the dotted names, plus your own string entries.
   */
  save(options?: SaveOptions): Uint8Array;
  /** Loads a safetensors file (from save() or PyTorch) into this EMA; all or nothing. */
  loadState(bytes: Uint8Array, options?: { prefix?: string; strict?: boolean }): Promise<void>;
  /** Frees the arena; every later call throws. Repeating it does nothing. */
  dispose(): void;
}

/** An EMA that takes the model's arrays on every call (createEma without `resident`). */
export declare class Ema extends BaseEma {
  private constructor();
  readonly resident: false;

  /**
   * One EMA step over every tracked parameter (LitEma.forward). Every tracked
   * name must be present with its length; untrainable entries are skipped.
   * Returns what the step did, its decay included.
   */
  update(params: Params, options?: UpdateOptions): UpdateResult;
  /** Writes every shadow (of `profile`) into its array in place (LitEma.copy_to). */
  copyTo(params: Params, options?: ProfileOptions): void;
  /** Snapshots every given array, trainable or not (LitEma.store). Replaces an earlier snapshot. */
  store(params: Params): void;
  /**
   * Writes the snapshot back, matched by name; names and lengths must match
   * the store. Throws if nothing was stored. An array that cannot be written
   * (its buffer was detached) does not stop the others: every other array is
   * written, then one Error names each array left out; the snapshot is kept.
   */
  restore(params: Params): void;
  /**
   * store, copyTo, `await fn()`, then restore even if fn throws (LitEma's
   * ema_scope). Until the restore is done, the arrays are held: no EMA may
   * update from, store, restore, copy into or create from them. If the
   * restore cannot write an array, the promise rejects with an Error naming
   * it (and fn's error, if any, as its `cause`).
   */
  withEma<T>(params: Params, fn: () => T | Promise<T>, options?: ProfileOptions): Promise<T>;
}

/**
 * An EMA whose parameters live in its arena (createEma with `resident: true`):
 * train in `param(name)`; update, copyTo, store, restore and withEma take no
 * arrays and copy nothing in.
 */
export declare class ResidentEma extends BaseEma {
  private constructor();
  readonly resident: true;

  /**
   * The parameter itself, a view into this EMA's WebAssembly memory, to train
   * in place. Valid for the EMA's whole life (a resident EMA never grows its
   * memory after creation); do not use it after dispose().
   */
  param(name: string): Float32Array;
  /** One EMA step from the resident parameters, with no copy-in; returns what it did, as Ema.update(). */
  update(params?: undefined, options?: UpdateOptions): UpdateResult;
  /** Shadows (of `profile`) into the resident parameters. */
  copyTo(options?: ProfileOptions): void;
  /** Snapshot of the resident parameters (no allocation). */
  store(): void;
  /** The snapshot back into the resident parameters; throws if nothing was stored. */
  restore(): void;
  /** Runs fn with the EMA weights in the resident parameters, then puts the training weights back. */
  withEma<T>(fn: () => T | Promise<T>, options?: ProfileOptions): Promise<T>;
}

/** What loadStateDict accepts: what stateDict() gives; scalars may also be plain numbers or booleans. */
export type StateDictInput =
  | ReadonlyMap<string, Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | number | boolean>
  | { readonly [key: string]: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | number | boolean };

export interface SaveOptions {
  /** Prefix for every key, e.g. 'model_ema.' as in Stable Diffusion checkpoints. Default ''. */
  prefix?: string;
  /** Extra `__metadata__` entries; values must be strings; keys starting with 'ema_wasm.' are reserved. */
  metadata?: Record<string, string>;
  /** Several power profiles: save this one alone, as a one-profile EMA's file (default: every profile). */
  profile?: number;
}

/**
 * Builds an EMA from a safetensors file written by save() (any recipe), by
 * PyTorch (LitEma's state_dict, optionally under a prefix such as
 * 'model_ema.'), or by another library with `recipe` and its options
 * (ema-pytorch's state_dict, a diffusers EMA model, timm's EMA state_dict).
 */
export declare function loadEma(bytes: Uint8Array, options?: LoadOptions): Promise<Ema>;

/**
 * Options of loadEma (and loadEmaFile): where the state is, which recipe and
 * options (they override the file's), the counter, and which module runs it.
 */
export interface LoadOptions extends Omit<EmaOptions, 'resident'> {
  /** The keys' prefix in the file, such as `'model_ema.'`. Default `''`. */
  prefix?: string;
  /** The counter to start from (else the file's, else the recipe's start). */
  counter?: number;
  /**
   * The model's entries, for their flags: which tensors of a library's own
   * file are frozen parameters or buffers (the file does not say; diffusers
   * keeps no buffers). Their values are not read.
   */
  params?: Params;
}

/** Creates an EMA whose shadows start as copies of the trainable parameters. */
export declare function createEma(params: Params, options: EmaOptions & { resident: true }): Promise<ResidentEma>;
export declare function createEma(params: Params, options?: EmaOptions & { resident?: false }): Promise<Ema>;
export declare function createEma(params: Params, options?: EmaOptions): Promise<Ema | ResidentEma>;

/**
 * The `__metadata__` entries of a safetensors file, in file order: what
 * save() wrote (`format`, `ema_wasm.names` and your own `metadata`) or what
 * another writer put there. The file is checked as loadEma checks it.
 */
export declare function readMetadata(bytes: Uint8Array, options?: { wasm?: WasmSource }): Promise<Record<string, string>>;

/** Whether this runtime supports WebAssembly SIMD128. */
export declare function hasWasmSimd(): boolean;

/** LitEma's buffer name for a parameter: the name with every '.' removed. */
export declare function shadowKey(name: string): string;
