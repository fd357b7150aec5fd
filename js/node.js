// ema-wasm/node: save an EMA to a file and load it back, in Node.
//
// Saving is atomic: the bytes go to a temporary file in the same folder, are
// flushed to disk (fsync), and the file is renamed over the target, so a
// crash or a full disk leaves either the old file or the new one, never half.

import { randomUUID } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { loadEma } from './ema.js';

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
