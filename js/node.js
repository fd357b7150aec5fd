// ema-wasm/node: save an EMA to a file and load it back, in Node.
//
// Saving is atomic: the bytes go to a temporary file in the same folder, are
// flushed to disk (fsync), and the file is renamed over the target, so a
// crash or a full disk leaves either the old file or the new one, never half.

import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { loadEma } from './ema.js';
import { loadModule } from './loader.js';
import { readOptions } from './resolve.js';
import { compareSnapshotNames, isSnapshotName, MAX_SNAPSHOTS, parseSnapshot, snapshotName } from './snapshots.js';
import { adoptWasmSource } from './wasm-source.js';
import { describe } from './describe.js';

/** Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir). */
export async function writeFileAtomic(path, bytes) {
  const folder = dirname(path);
  const temporary = join(folder, `.${basename(path)}.${process.pid}.${randomUUID()}.tmp`);
  let handle = await open(temporary, 'wx', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  // Make the rename itself durable. Some platforms cannot open or fsync a
  // folder; the file is complete either way.
  try {
    const folderHandle = await open(folder, 'r');
    try {
      await folderHandle.sync();
    } finally {
      await folderHandle.close();
    }
  } catch {
    // ignore: see above
  }
}

/** Saves `ema` (see Ema.save for the options) to `path` atomically; returns its byte size. */
export async function saveEmaFile(ema, path, options = {}) {
  const bytes = ema.save(options);
  await writeFileAtomic(path, bytes);
  return bytes.length;
}

/** Builds a new EMA from a safetensors file (see loadEma). */
export async function loadEmaFile(path, options = {}) {
  return loadEma(new Uint8Array(await readFile(path)), options);
}

/** Loads a safetensors file into an existing EMA (see Ema.loadState). */
export async function loadEmaStateFile(ema, path, options = {}) {
  await ema.loadState(new Uint8Array(await readFile(path)), options);
}

/**
 * Writes snapshots (ema.snapshot()'s) into `folder`, creating it when
 * missing, each atomically under its predictable name (snapshotName: the
 * step and the profile), so a folder never holds half a snapshot. Returns
 * the paths written.
 */
export async function writeSnapshots(folder, snapshots) {
  if (typeof folder !== 'string' || folder === '') {
    throw new TypeError(`ema-wasm: writeSnapshots: folder must be a path, got ${describe(folder)}`);
  }
  if (!Array.isArray(snapshots)) {
    throw new TypeError(`ema-wasm: writeSnapshots: snapshots must be an array (what ema.snapshot() returns), got ${describe(snapshots)}`);
  }
  const given = Array.from(snapshots);
  given.forEach((snapshot, index) => {
    const ok = snapshot !== null && typeof snapshot === 'object' && snapshot.bytes instanceof Uint8Array &&
      typeof snapshot.name === 'string' && isSnapshotName(snapshot.name) && snapshot.name === snapshotName(snapshot.step, snapshot.profile);
    if (!ok) {
      throw new TypeError(`ema-wasm: writeSnapshots: snapshots[${index}] must be one of ema.snapshot()'s, got ${describe(snapshot)}`);
    }
  });
  await mkdir(folder, { recursive: true });
  const paths = [];
  for (const { name, bytes } of given) {
    const path = join(folder, name);
    await writeFileAtomic(path, bytes);
    paths.push(path);
  }
  return paths;
}

/**
 * Reads every snapshot in `folder` (files named as writeSnapshots names
 * them; other files are left alone), each checked as readSnapshot checks
 * it, in name order (step, then profile). Returns [{ name, step, samples,
 * profile, sigmaRel, gamma, batchSize, dtype, tensors, bytes }], what
 * reconstruct() takes. A folder with no snapshot is an Error.
 */
export async function readSnapshots(folder, options = {}) {
  if (typeof folder !== 'string' || folder === '') {
    throw new TypeError(`ema-wasm: readSnapshots: folder must be a path, got ${describe(folder)}`);
  }
  const { simd = 'auto', wasm } = readOptions(options, ['simd', 'wasm'], 'readSnapshots');
  const { module } = await loadModule(simd, adoptWasmSource(wasm), 'readSnapshots');
  let entries;
  try {
    entries = await readdir(folder);
  } catch (error) {
    throw new Error(`ema-wasm: readSnapshots: cannot read the folder '${folder}': ${error.message}`, { cause: error });
  }
  // By step, then profile, as numbers: reconstruct() sums in the order given.
  const names = entries.filter(isSnapshotName).sort((a, b) => compareSnapshotNames(a, b));
  if (names.length === 0) throw new Error(`ema-wasm: readSnapshots: '${folder}' holds no snapshot (files named like ${snapshotName(1000, 0)})`);
  if (names.length > MAX_SNAPSHOTS) {
    throw new RangeError(`ema-wasm: readSnapshots: '${folder}' holds ${names.length} snapshots; one reconstruction takes at most ${MAX_SNAPSHOTS}`);
  }
  const snapshots = [];
  for (const name of names) {
    const bytes = new Uint8Array(await readFile(join(folder, name)));
    const snapshot = await parseSnapshot(bytes, 'readSnapshots', module, `'${name}'`, { name });
    if (snapshotName(snapshot.step, snapshot.profile) !== name) {
      throw new Error(`ema-wasm: readSnapshots: '${name}' holds step ${snapshot.step} of profile ${snapshot.profile}, which its name does not say; was it renamed?`);
    }
    snapshots.push(snapshot);
  }
  return snapshots;
}
