// Types for ema-wasm/tfjs. TF.js types are described structurally so that this
// file does not require @tensorflow/tfjs-core to be installed to type-check.
import type { EmaOptions, UpdateOptions, UpdateResult } from '../index.js';
import type { WeightSourceEma } from './weight-source-ema.js';

/** What the adapter needs of a tf.Variable or a LayerVariable. */
export interface TfVariableLike {
  readonly name: string;
  /** A LayerVariable's shape may hold null (an unknown dimension); a weight's never does at run time. */
  readonly shape: readonly (number | null)[];
  readonly dtype?: string;
  /** A LayerVariable has read(); a tf.Variable has dataSync(). */
  read?: () => unknown;
  dataSync?: () => unknown;
}

/** What the adapter needs of a tf.LayersModel. */
export interface TfModelLike {
  readonly trainableWeights: readonly TfVariableLike[];
  /** Read with `buffers: true`. */
  readonly nonTrainableWeights?: readonly TfVariableLike[];
}

export interface TfjsEmaOptions extends Omit<EmaOptions, 'resident'> {
  /** The TensorFlow.js namespace; defaults to `import('@tensorflow/tfjs-core')`. */
  tf?: { tensor: (...args: any[]) => any };
  /**
   * Also track the model's nonTrainableWeights (BatchNorm's moving
   * statistics) as buffers: timm and ema-pytorch average them, the other
   * recipes leave them alone. Default false.
   */
  buffers?: boolean;
}

/** An EMA of TF.js variables; every call that reads or writes them is synchronous, as TF.js's are. */
export declare class TfjsEma extends WeightSourceEma {
  private constructor();
  /**
   * One EMA step from the variables' current values (dataSync per variable);
   * returns what it did (`.decay` is the decay used).
   */
  update(options?: UpdateOptions): UpdateResult;
  /** Writes the EMA weights into the variables (assign of a fresh tensor, disposed after). */
  copyTo(options?: import('../index.js').ProfileOptions): void;
  /** Snapshots the variables' current values. */
  store(): void;
  /**
   * Writes the snapshot back into every variable that still exists, then
   * throws one Error naming those that could not take it; throws if nothing
   * was stored.
   */
  restore(): void;
  /** A callback for model.fit that updates the EMA after every batch. */
  callback(): { onBatchEnd: (batch: number, logs?: unknown) => Promise<void> };
}

/** Tracks a LayersModel's trainableWeights, or a list of tf.Variable, keyed by variable name. */
export declare function createTfjsEma(
  modelOrVariables: TfModelLike | readonly TfVariableLike[],
  options?: TfjsEmaOptions,
): Promise<TfjsEma>;
