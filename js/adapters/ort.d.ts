// Types for ema-wasm/ort, the onnxruntime-web training adapter
// (implementation: js/adapters/ort.js). onnxruntime-web's own types are not
// imported: any object of the shape below is accepted, and onnxruntime-web's
// TrainingSession (1.17 to 1.19.2) has that shape.

import type { EmaOptions, UpdateOptions, UpdateResult } from '../index.js';
import type { WeightSourceEma } from './weight-source-ema.js';

/** What the adapter reads from `getContiguousParameters`: a float32 tensor. */
export interface OrtTensorLike {
  /** Element type; must be `'float32'` when present. */
  readonly type?: string;
  /** The values; must be a Float32Array of `getParametersSize(true)` elements. */
  readonly data: unknown;
}

/** The part of onnxruntime-web's TrainingSession the adapter uses. */
export interface OrtTrainingSessionLike {
  getParametersSize(trainableOnly: boolean): Promise<number> | number;
  getContiguousParameters(trainableOnly: boolean): Promise<OrtTensorLike> | OrtTensorLike;
  loadParametersBuffer(buffer: Uint8Array, trainableOnly: boolean): Promise<void> | void;
}

/** Options of createOrtEma: the same as createEma's. */
export type OrtEmaOptions = Omit<EmaOptions, 'resident'>;

/**
 * An EMA of all trainable parameters of a TrainingSession, tracked as one
 * parameter named `'parameters'` of shape `[size]`. Methods that read or write
 * the session's weights are async because the session's are.
 */
export declare class OrtEma extends WeightSourceEma {
  private constructor();

  /** Number of trainable parameters tracked (`getParametersSize(true)`). */
  readonly size: number;

  /**
   * One EMA step with the session's current trainable parameters (call it after
   * `runOptimizerStep()`). Resolves to what the step did (`.decay` is the
   * decay it used). Throws, leaving the EMA unchanged, if the session gives
   * anything but `size` float32 values.
   */
  update(options?: UpdateOptions): Promise<UpdateResult>;
  /** Loads the EMA weights into the session (LitEma.copy_to). */
  copyTo(options?: import('../index.js').ProfileOptions): Promise<void>;
  /** Snapshots the session's trainable parameters, replacing an earlier snapshot (LitEma.store). */
  store(): Promise<void>;
  /** Loads the snapshot back into the session. Throws if nothing was stored. */
  restore(): Promise<void>;
  /** A copy of the whole EMA vector, in `getContiguousParameters` order. */
  // @ts-expect-error: the whole vector, not one weight by name
  shadow(options?: import('../index.js').ProfileOptions): Float32Array;
}

/**
 * Creates an EMA of `session`'s trainable parameters; the shadow starts as a
 * copy of them. onnxruntime-web itself is not imported: pass your session.
 */
export declare function createOrtEma(session: OrtTrainingSessionLike, options?: OrtEmaOptions): Promise<OrtEma>;
