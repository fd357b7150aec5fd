// One function per bundler, each building a test app the way its docs'
// minimal setup does (no plugins or options for WebAssembly, workers or Node
// built-ins), through the bundler's own API from the repository's
// node_modules. Each returns { outDir, log } and throws a BuildError that
// carries the bundler's own messages when the build fails.
import { join } from 'node:path';

import { REPO_ROOT, plain, run } from './harness.js';

export class BuildError extends Error {
  constructor(tool, output) {
    super(`${tool} build failed:\n${plain(output).trim()}`);
    this.name = 'BuildError';
  }
}

/**
 * webpack 5, production mode, entry and output only. `context` is the app, as
 * when the webpack CLI runs in it.
 */
export async function buildWebpack(app, entry) {
  const { default: webpack } = await import('webpack');
  const outDir = join(app, 'dist');
  const compiler = webpack({ mode: 'production', context: app, entry, output: { path: outDir } });
  const stats = await new Promise((resolve, reject) => {
    compiler.run((error, result) => {
      compiler.close((closeError) => (error || closeError ? reject(error || closeError) : resolve(result)));
    });
  });
  // The messages without webpack's own stack traces, which say nothing about the package.
  const log = stats
    .toString({ all: false, errors: true, warnings: true, errorStack: false, colors: false })
    .split('\n')
    .filter((line) => !/^\s+at /.test(line))
    .join('\n');
  if (stats.hasErrors()) throw new BuildError('webpack', log);
  return { outDir, log };
}

/** esbuild: bundle, ESM, browser platform, everything else default. */
export async function buildEsbuild(app, entry) {
  const esbuild = await import('esbuild');
  const outDir = join(app, 'dist');
  const format = async (messages, kind) =>
    (await esbuild.formatMessages(messages, { kind, color: false })).join('\n');
  try {
    const result = await esbuild.build({
      absWorkingDir: app,
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      outdir: 'dist',
      logLevel: 'silent',
    });
    return { outDir, log: await format(result.warnings, 'warning') };
  } catch (error) {
    if (!Array.isArray(error.errors)) throw error;
    const output = [await format(error.errors, 'error'), await format(error.warnings ?? [], 'warning')];
    throw new BuildError('esbuild', output.join('\n'));
  }
}

/**
 * Rollup 4 with @rollup/plugin-node-resolve (browser: true) and a single
 * output file in ES format, the config most Rollup users start from.
 */
export async function buildRollup(app, entry) {
  const { rollup } = await import('rollup');
  const { nodeResolve } = await import('@rollup/plugin-node-resolve');
  const outDir = join(app, 'dist');
  const warnings = [];
  let bundle;
  try {
    bundle = await rollup({
      input: join(app, entry),
      plugins: [nodeResolve({ browser: true })],
      onwarn: (warning) => warnings.push(`warning: ${warning.message}`),
    });
    await bundle.write({ file: join(outDir, 'bundle.js'), format: 'es' });
  } catch (error) {
    const where = error.loc ? ` (${error.loc.file}:${error.loc.line}:${error.loc.column})` : '';
    throw new BuildError('rollup', [`${error.code ? `${error.code}: ` : ''}${error.message}${where}`, ...warnings].join('\n'));
  } finally {
    await bundle?.close();
  }
  return { outDir, log: warnings.join('\n') };
}

/**
 * A Vite logger that keeps what it is told (for failure messages) instead of
 * printing into the test output.
 */
function recordingLogger() {
  const lines = [];
  const warnedOnce = new Set();
  // Every method returns undefined: Vite 8 hands some of them to Rolldown,
  // which refuses callbacks that return a value.
  const logger = {
    hasWarned: false,
    info: (message) => {
      lines.push(plain(message));
    },
    warn: (message) => {
      logger.hasWarned = true;
      lines.push(`warning: ${plain(message)}`);
    },
    warnOnce: (message) => {
      if (!warnedOnce.has(message)) {
        warnedOnce.add(message);
        logger.warn(message);
      }
    },
    error: (message, options) => {
      lines.push(`error: ${plain(message)}${options?.error?.stack ? `\n${plain(options.error.stack)}` : ''}`);
    },
    clearScreen: () => {},
    hasErrorLogged: () => false,
  };
  return { logger, lines };
}

/** Vite's production build of the app's index.html, as `vite build` in the app does. */
export async function buildVite(vitePackage, app) {
  const vite = await import(vitePackage);
  const { logger, lines } = recordingLogger();
  try {
    // Warnings and errors only: Vite 8's native reporter prints its progress lines
    // to stdout, past customLogger, at the info level.
    await vite.build({ root: app, configFile: false, customLogger: logger, logLevel: 'warn' });
  } catch (error) {
    throw new BuildError(`${vitePackage} (vite build)`, [error.stack || error.message, ...lines].join('\n'));
  }
  return { outDir: join(app, 'dist'), log: lines.join('\n') };
}

/**
 * Vite's dev server on loopback, any free port, as `vite` in the app does.
 * Returns { url, log, close }; log holds what the server reported so far
 * (its dependency optimiser logs errors there, not to the page).
 */
export async function startViteDev(vitePackage, app) {
  const vite = await import(vitePackage);
  const { logger, lines } = recordingLogger();
  const server = await vite.createServer({
    root: app,
    configFile: false,
    customLogger: logger,
    logLevel: 'info',
    server: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  try {
    await server.listen();
  } catch (error) {
    await server.close();
    throw new BuildError(`${vitePackage} (dev server)`, [error.stack || error.message, ...lines].join('\n'));
  }
  const { port } = server.httpServer.address();
  return { url: `http://127.0.0.1:${port}/`, log: () => lines.join('\n'), close: () => server.close() };
}

/**
 * Parcel 2's production build of index.html through its CLI (a separate
 * process: Parcel runs worker processes and native watchers of its own), with
 * the cache inside the app and no auto-install.
 */
export async function buildParcel(app) {
  const parcelBin = join(REPO_ROOT, 'node_modules', 'parcel', 'lib', 'bin.js');
  const outDir = join(app, 'dist');
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [parcelBin, 'build', 'index.html', '--dist-dir', 'dist', '--cache-dir', join(app, '.parcel-cache'), '--no-autoinstall'],
      { cwd: app, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }, timeout: 110_000 },
    );
    return { outDir, log: plain(`${stdout}\n${stderr}`).trim() };
  } catch (error) {
    throw new BuildError('parcel', error.message);
  }
}
