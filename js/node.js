// ema-wasm/node: save an EMA to a file and load it back, in Node.
//
// Saving is atomic: the bytes go to a temporary file in the same folder, are
// flushed to disk (fsync), and the file is renamed over the target, so a
// crash or a full disk leaves either the old file or the new one, never half.

import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { loadEma } from './ema.js';
import { loadModule } from './loader.js';
import { readOptions } from './resolve.js';
import { compareSnapshotNames, isSnapshotName, MAX_SNAPSHOTS, parseSnapshot, snapshotName } from './snapshots.js';
import { lengthOf, typedArrayKind, unusableReason } from './typed-arrays.js';
import { adoptWasmSource } from './wasm-source.js';
import { describe, formatBytes } from './describe.js';

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
 * Writes snapshots (ema.snapshot()'s or readSnapshots()') into `folder`,
 * creating it when missing, each atomically under its predictable name
 * (snapshotName: the step and the profile), so a folder never holds half a
 * snapshot. Every snapshot is checked first, as readSnapshot checks one, and
 * its name must be the one its bytes' step and profile give; a refused call
 * writes nothing. What is written is the checked copy of each file (so the
 * call holds a second copy of every snapshot until it returns). Options:
 * { simd, wasm }, the module that checks them. Returns the paths written.
 */
export async function writeSnapshots(folder, snapshots, options = {}) {
  const method = 'writeSnapshots';
  if (typeof folder !== 'string' || folder === '') {
    throw new TypeError(`ema-wasm: ${method}: folder must be a path, got ${describe(folder)}`);
  }
  if (!Array.isArray(snapshots)) {
    throw new TypeError(`ema-wasm: ${method}: snapshots must be an array (what ema.snapshot() returns), got ${describe(snapshots)}`);
  }
  const { simd = 'auto', wasm } = readOptions(options, ['simd', 'wasm'], method);
  const given = Array.from(snapshots).map(readSnapshotFields);
  const { module } = await loadModule(simd, adoptWasmSource(wasm), method);
  const files = [];
  for (const [index, fields] of given.entries()) files.push(await checkedFile(fields, index, module));
  // One call writes each name once: two snapshots of one step and profile would overwrite each other.
  const firstOf = new Map();
  files.forEach(({ name }, index) => {
    if (firstOf.has(name)) {
      throw new Error(`ema-wasm: ${method}: snapshots[${firstOf.get(name)}] and snapshots[${index}] would both be written as '${name}'`);
    }
    firstOf.set(name, index);
  });
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    const why = { EEXIST: ' (a file has its name)', ENOTDIR: ' (a part of its path is a file)' }[error?.code] ?? '';
    throw fsError(method, `cannot create the folder '${folder}'${why}`, error);
  }
  const paths = [];
  for (const { name, bytes } of files) {
    const path = join(folder, name);
    try {
      await writeFileAtomic(path, bytes);
    } catch (error) {
      const before = paths.length === 0 ? '' : ` (after ${paths.length} of the ${files.length} snapshots)`;
      throw fsError(method, `cannot write '${path}'${before}`, error);
    }
    paths.push(path);
  }
  return paths;
}

/** A snapshot object's name, step, profile and bytes, each read once and checked for its type. */
function readSnapshotFields(snapshot, index) {
  const at = `ema-wasm: writeSnapshots: snapshots[${index}]`;
  if (snapshot === null || typeof snapshot !== 'object') {
    throw new TypeError(`${at} must be one of ema.snapshot()'s or readSnapshots()' objects, got ${describe(snapshot)}`);
  }
  const { name, step, profile, bytes } = snapshot;
  if (!isSnapshotName(name)) {
    throw new TypeError(`${at}.name must be a snapshot's file name (snapshotName(step, profile), like ${snapshotName(1000, 0)}), got ${describe(name)}`);
  }
  if (typedArrayKind(bytes) !== 'Uint8Array') {
    throw new TypeError(`${at}.bytes must be a Uint8Array (the snapshot's file), got ${describe(bytes)}`);
  }
  const unusable = unusableReason(bytes, lengthOf(bytes));
  if (unusable !== null) throw new Error(`${at}.bytes cannot be read: ${unusable}`);
  return { name, step, profile, bytes };
}

/**
 * The file to write for one snapshot: a checked copy of its bytes (even of
 * readSnapshots' results, whose bytes the caller could transfer while the
 * files are written), under the name its step and profile give.
 */
async function checkedFile({ name, step, profile, bytes }, index, module) {
  const at = `ema-wasm: writeSnapshots: snapshots[${index}]`;
  const parsed = await parseSnapshot(bytes, 'writeSnapshots', module, `snapshots[${index}]`);
  const expected = snapshotName(parsed.step, parsed.profile);
  if (name !== expected) {
    throw new Error(`${at} is named '${name}', but its bytes are step ${parsed.step} of profile ${parsed.profile}, whose name is '${expected}'`);
  }
  if (step !== parsed.step || profile !== parsed.profile) {
    throw new Error(
      `${at} says step ${describe(step)} and profile ${describe(profile)}, but its bytes are step ${parsed.step} of profile ${parsed.profile}`,
    );
  }
  return { name, bytes: parsed.bytes };
}

/** The largest file Node reads into one buffer (fs's kIoMaxLength). */
const MAX_FILE_BYTES = 2 ** 31 - 1;

/**
 * Reads every snapshot in `folder` (files named as writeSnapshots names
 * them; other files are left alone), each checked as readSnapshot checks
 * it, in name order (step, then profile). Returns [{ name, step, samples,
 * profile, sigmaRel, gamma, batchSize, dtype, tensors, bytes }], what
 * reconstruct() takes. A folder with no snapshot is an Error; so is an
 * entry with a snapshot's name that is not a regular file (after following
 * symbolic links: a folder, a broken link, a FIFO, a device are never opened),
 * or a file larger than Node reads at once (2 GiB - 1 bytes). File system
 * errors come as ema-wasm Errors naming the file, the original as `cause`.
 */
export async function readSnapshots(folder, options = {}) {
  const method = 'readSnapshots';
  if (typeof folder !== 'string' || folder === '') {
    throw new TypeError(`ema-wasm: ${method}: folder must be a path, got ${describe(folder)}`);
  }
  const { simd = 'auto', wasm } = readOptions(options, ['simd', 'wasm'], method);
  const { module } = await loadModule(simd, adoptWasmSource(wasm), method);
  let entries;
  try {
    entries = await readdir(folder);
  } catch (error) {
    throw fsError(method, `cannot read the folder '${folder}'`, error);
  }
  // By step, then profile, as numbers: reconstruct() sums in the order given.
  const names = entries.filter(isSnapshotName).sort((a, b) => compareSnapshotNames(a, b));
  if (names.length === 0) throw new Error(`ema-wasm: ${method}: '${folder}' holds no snapshot (files named like ${snapshotName(1000, 0)})`);
  if (names.length > MAX_SNAPSHOTS) {
    throw new RangeError(`ema-wasm: ${method}: '${folder}' holds ${names.length} snapshots; one reconstruction takes at most ${MAX_SNAPSHOTS}`);
  }
  // Every entry is looked at before any is read: a bad one is found at once.
  for (const name of names) await checkSnapshotEntry(folder, name);
  const snapshots = [];
  for (const name of names) {
    const bytes = await readSnapshotFile(folder, name);
    const snapshot = await parseSnapshot(bytes, method, module, `'${name}'`, { extra: { name }, owned: true });
    if (snapshotName(snapshot.step, snapshot.profile) !== name) {
      throw new Error(`ema-wasm: ${method}: '${name}' holds step ${snapshot.step} of profile ${snapshot.profile}, which its name does not say; was it renamed?`);
    }
    snapshots.push(snapshot);
  }
  return snapshots;
}

/** What a file-system entry is, for messages. */
function entryKind(stats) {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** An entry's size, once its stat (symbolic links followed) shows a regular file of a size Node reads. */
function checkSnapshotStats(stats, name) {
  if (!stats.isFile()) {
    throw new Error(`ema-wasm: readSnapshots: '${name}' is ${entryKind(stats)}, not a snapshot file; only snapshot files may be named like one`);
  }
  if (stats.size > MAX_FILE_BYTES) {
    throw new RangeError(
      `ema-wasm: readSnapshots: '${name}' is ${formatBytes(stats.size)}, more than the ${formatBytes(MAX_FILE_BYTES)} Node reads into one buffer`,
    );
  }
  return stats.size;
}

/** Checks that the entry `name` of `folder` is a snapshot file, by its stat alone (it is not opened). */
async function checkSnapshotEntry(folder, name) {
  const path = join(folder, name);
  let stats;
  try {
    stats = await stat(path);
  } catch (error) {
    const link = error?.code === 'ENOENT' && (await lstat(path).then((entry) => entry.isSymbolicLink(), () => false));
    throw fsError('readSnapshots', link ? `'${name}' is a symbolic link to nothing (its target is missing)` : `cannot read '${name}'`, error);
  }
  checkSnapshotStats(stats, name);
}

/**
 * The bytes of the snapshot file `name` in `folder`, in a Uint8Array of
 * their own. Opened without waiting (should the entry have become a FIFO
 * since checkSnapshotEntry), and checked again once open.
 */
async function readSnapshotFile(folder, name) {
  const cannotRead = `cannot read '${name}'`;
  const handle = await attempt(cannotRead, () => open(join(folder, name), constants.O_RDONLY | (constants.O_NONBLOCK ?? 0)));
  try {
    const size = checkSnapshotStats(await attempt(cannotRead, () => handle.stat()), name);
    const bytes = await attempt(`cannot hold '${name}' (${formatBytes(size)}) in memory`, async () => new Uint8Array(size));
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await attempt(cannotRead, () => handle.read(bytes, filled, size - filled, filled));
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled !== size) throw new Error(`ema-wasm: readSnapshots: '${name}' shrank while it was read (${size} bytes, then ${filled})`);
    return bytes;
  } finally {
    await handle.close().catch(() => {});
  }
}

/** What `call` resolves to; if it fails, an ema-wasm Error of readSnapshots saying `what` failed. */
async function attempt(what, call) {
  try {
    return await call();
  } catch (error) {
    throw fsError('readSnapshots', what, error);
  }
}

/** An ema-wasm Error for a failed file-system call (`what` failed), the original as `cause`. */
function fsError(method, what, error) {
  return new Error(`ema-wasm: ${method}: ${what}: ${error?.message ?? String(error)}`, { cause: error });
}
