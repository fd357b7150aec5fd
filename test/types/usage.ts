// Compiled by test/js/types.test.js with `tsc --noEmit --strict`: the
// declarations must accept what the README shows and reject misuse.
import { createEma, hasWasmSimd, readMetadata, shadowKey, type BaseEma, type Ema, type RecipeName, type StateDict, type UpdateResult } from 'ema-wasm';

async function main(): Promise<void> {
  const weight = new Float32Array(6);
  const params = [
    { name: 'layer.weight', data: weight, shape: [2, 3] },
    { name: 'layer.running_mean', data: new Float32Array(2), trainable: false },
  ];
  const ema: Ema = await createEma(params, { decay: 0.999, useNumUpdates: true, simd: 'auto' });
  const result: UpdateResult = ema.update(params);
  const decayUsed: number = result.decay;
  const done: 'averaged' | 'copied' | 'skipped' = result.action;
  const step: [number, number, boolean, boolean] = [result.weight, result.counter, result.overwrote, result.nonFinite];
  ema.copyTo(new Map([['layer.weight', weight]]));
  ema.store({ 'layer.weight': weight });
  ema.restore({ 'layer.weight': weight });
  const accuracy: number = await ema.withEma(params, async () => 0.9);
  const state: StateDict = ema.stateDict();
  const shadow: Float32Array = ema.shadow('layer.weight');
  const info: [number, number, string[], boolean, number, boolean, string] =
    [ema.numUpdates, ema.decay, ema.names, ema.simd, ema.byteLength, hasWasmSimd(), shadowKey('a.b')];
  const metadata: Record<string, string> = await readMetadata(ema.save({ metadata: { step: '1' } }));
  ema.resetNumUpdates();
  ema.dispose();
  void [decayUsed, done, step, accuracy, state, shadow, info, metadata];

  // Recipes: frozen parameters, float and integer buffers, timm's step, files.
  const model = [
    { name: 'conv.weight', data: new Float32Array(4) },
    { name: 'head.bias', data: new Float32Array(2), trainable: false },
    { name: 'bn.running_mean', data: new Float32Array(2), buffer: true },
    { name: 'bn.num_batches_tracked', data: new BigInt64Array(1), buffer: true }, // a literal's true widens to boolean: accepted
  ];
  const timm = await createEma(model, { recipe: 'timm', decay: 0.9998, useWarmup: true, nonFinite: 'skip' });
  const stepped: UpdateResult = timm.update(model, { step: 12 });
  const counted: BigInt64Array = timm.shadow<BigInt64Array>('bn.num_batches_tracked');
  const recipe: RecipeName = timm.recipe;
  const counter: number = timm.counter;
  void [stepped, counted, recipe, counter];
  // @ts-expect-error: an integer array must be marked as a buffer
  await createEma([{ name: 'n', data: new Int32Array(1) }]);
  // @ts-expect-error: no such recipe
  await createEma(params, { recipe: 'optax' });
  // @ts-expect-error: timm's step is a number
  timm.update(model, { step: '3' });

  // @ts-expect-error: data must be a Float32Array
  await createEma([{ name: 'w', data: new Float64Array(2) }]);
  // @ts-expect-error: simd is 'auto' or a boolean
  await createEma(params, { simd: 'yes' });
  // @ts-expect-error: the numUpdates counter is read-only
  ema.numUpdates = 3;
  // @ts-expect-error: update returns what the step did, not the decay
  const bare: number = ema.update(params);
  void bare;
  // @ts-expect-error: a step averages, copies or skips
  const other: 'overwrote' = result.action;
  void other;
  // @ts-expect-error: recipe names are the reference libraries'
  await createEma(params, { recipe: 'pytorch' });
  const keras: Ema = await createEma(params, { recipe: 'keras', emaMomentum: 0.99, emaOverwriteFrequency: null, nonFinite: 'skip' });
  void keras;
  // @ts-expect-error: update takes params (or nothing, for a resident EMA)
  ema.update(42);
}
void main;

import { createTfjsEma } from 'ema-wasm/tfjs';

async function tfjsUsage(model: { trainableWeights: { name: string; shape: number[] }[] }): Promise<void> {
  const ema = await createTfjsEma(model, { decay: 0.999 });
  const decay: number = ema.update().decay;
  const recipes = [await createTfjsEma(model, { recipe: 'keras' }), await createTfjsEma(model, { recipe: 'diffusers', useEmaWarmup: true, nonFinite: 'throw' })];
  void recipes;
  const loss: number = await ema.withEma(() => 0.5);
  const callbacks = [ema.callback()];
  ema.copyTo();
  ema.store();
  ema.restore();
  const bytes: Uint8Array = ema.save({ prefix: 'model_ema.', metadata: { step: '1' } });
  await ema.loadState(bytes, { prefix: 'model_ema.', strict: true });
  const kernel: Float32Array = ema.shadow('dense/kernel');
  const core: Ema = ema.ema;
  const names: string[] = ema.names;
  void [decay, loss, callbacks, kernel, core, names, ema.numUpdates, ema.decay, ema.simd, ema.stateDict()];
  // @ts-expect-error: update takes no arguments in the adapter
  ema.update(model);
  // @ts-expect-error: a TF.js EMA's shadows are per variable, by name
  ema.shadow();
  // @ts-expect-error: TF.js calls are synchronous: update returns what the step did, not a promise
  const pending: Promise<UpdateResult> = ema.update();
  // @ts-expect-error: the adapter takes no 'resident' option
  await createTfjsEma(model, { resident: true });
  void pending;
  ema.dispose();
}
void tfjsUsage;

import { createOrtEma, type OrtTrainingSessionLike } from 'ema-wasm/ort';

async function ortUsage(session: OrtTrainingSessionLike): Promise<void> {
  const ema = await createOrtEma(session, { decay: 0.999 });
  const { decay, action }: UpdateResult = await ema.update();
  await createOrtEma(session, { recipe: 'ema-pytorch', beta: 0.999, updateEvery: 1 });
  await ema.withEma(async () => undefined);
  const vector: Float32Array = ema.shadow();
  await ema.copyTo();
  await ema.store();
  await ema.restore();
  const bytes: Uint8Array = ema.save();
  await ema.loadState(bytes);
  await ema.copyTo();
  const names: string[] = ema.names;
  void [decay, action, vector, ema.size, names, ema.ema.save()];
  // @ts-expect-error: the session is required
  await createOrtEma();
  // @ts-expect-error: the session's calls are async: update gives a promise
  const now: UpdateResult = ema.update();
  // @ts-expect-error: loadState takes the file's bytes
  await ema.loadState('ema.safetensors');
  void now;
  ema.dispose();
}
void ortUsage;

import { loadEma } from 'ema-wasm';
import { loadEmaFile, saveEmaFile } from 'ema-wasm/node';

async function checkpointUsage(ema: Ema): Promise<void> {
  const bytes: Uint8Array = ema.save({ prefix: 'model_ema.', metadata: { step: '1000' } });
  const copy = await loadEma(bytes, { prefix: 'model_ema.' });
  const fromPython: Ema = await loadEma(bytes, { recipe: 'timm', counter: 5, decay: 0.999 });
  void fromPython;
  await copy.loadState(bytes, { prefix: 'model_ema.', strict: true });
  copy.loadStateDict(ema.stateDict());
  const size: number = await saveEmaFile(ema, 'ema.safetensors');
  const fromDisk: Ema = await loadEmaFile('ema.safetensors');
  void [size, fromDisk];
  // @ts-expect-error: metadata values are strings
  ema.save({ metadata: { step: 1000 } });
}
void checkpointUsage;

async function residentUsage(): Promise<void> {
  const ema = await createEma({ w: new Float32Array(4) }, { resident: true });
  const w: Float32Array = ema.param('w');
  w[0] = 1;
  const decay: number = ema.update().decay;
  const loss: number = await ema.withEma(() => 0.1);
  ema.store();
  ema.copyTo();
  ema.restore();
  void [decay, loss, ema.resident];
  const kind: true = ema.resident;
  void kind;
  // @ts-expect-error: a resident EMA takes no params
  ema.update({ w });
  // @ts-expect-error: a resident EMA's withEma takes only fn
  await ema.withEma({ w }, () => 0);
  const plain = await createEma({ w: new Float32Array(4) });
  // @ts-expect-error: an EMA that is not resident needs params
  plain.update();
  // @ts-expect-error: only a ResidentEma has param()
  plain.param('w');
  const either: BaseEma = Math.random() > 0.5 ? ema : plain;
  void either.save();
}
void residentUsage;

// Post-hoc EMA: several profiles, snapshots, reconstruction (README "Post-hoc EMA").
import { readSnapshot, reconstruct, snapshotName, type Profile, type Reconstruction, type Snapshot } from 'ema-wasm';
import { readSnapshots, writeSnapshots } from 'ema-wasm/node';

async function posthoc(): Promise<void> {
  const weight = new Float32Array(6);
  const params = { 'layer.weight': weight };
  const ema = await createEma(params, { recipe: 'power', sigmaRel: [0.05, 0.1] });
  const result = ema.update(params, { samples: 32 });
  const weights: number[] | undefined = result.profiles?.map(({ weight: w }) => w);
  const profiles: Profile[] | null = ema.profiles;
  ema.copyTo(params, { profile: 1 });
  await ema.withEma(params, () => 0, { profile: 1 });
  const shadow: Float32Array = ema.shadow('layer.weight', { profile: 1 });
  const one: Uint8Array = ema.save({ profile: 1 });
  const snapshots: Snapshot[] = ema.snapshot({ dtype: 'float16' });
  const paths: string[] = await writeSnapshots('run/snapshots', snapshots);
  const read = await readSnapshots('run/snapshots');
  const checked = await readSnapshot(snapshots[0].bytes);
  const rebuilt: Reconstruction = await reconstruct(read, { sigmaRel: 0.08, at: checked.samples, warn: false });
  const fromSnapshots: Reconstruction = await reconstruct(snapshots, { gamma: 7 });
  const out: [Float32Array | undefined, number, number, string | null, string, number] =
    [rebuilt.weights.get('layer.weight'), rebuilt.conditionNumber, fromSnapshots.amplification, rebuilt.warning, snapshotName(1000, 0), ema.steps];
  // @ts-expect-error: a profile is a number
  ema.copyTo(params, { profile: 'narrow' });
  // @ts-expect-error: reconstruct takes snapshots, not an EMA
  await reconstruct(ema, { sigmaRel: 0.1 });
  // @ts-expect-error: the target's width, sigmaRel or gamma, is required
  await reconstruct(snapshots, {});
  // @ts-expect-error: one of them, not both
  await reconstruct(snapshots, { sigmaRel: 0.1, gamma: 3 });
  const fit: number = rebuilt.fitError;
  void fit;
  void [weights, profiles, shadow, one, paths, out];
}
void posthoc;
