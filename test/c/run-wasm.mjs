// Runs a C program compiled to a standalone WebAssembly module (the link mode
// of the shipped modules, -sSTANDALONE_WASM, with a main) under Node's WASI:
// arguments, stdout, stderr and the clocks. Standalone modules cannot open
// files, so `--stdin FILE` connects the program's stdin to FILE instead.
// Exits with the program's exit code; a trap (a failed assert, an out-of-
// bounds access) exits 1.
//
//   node --no-warnings test/c/run-wasm.mjs [--stdin FILE] program.wasm [args...]
//
// CMakeLists.txt (-DEMA_WASM_TESTS=ON) runs every C test this way, for both
// builds; bench/kernels.mjs runs the kernel benchmark this way.
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

// node:wasi is there without a flag from Node 18.x's later releases on;
// before, it takes --experimental-wasi-unstable-preview1: run again with it.
let WASI;
try {
  ({ WASI } = await import('node:wasi'));
} catch (error) {
  if (error.code !== 'ERR_UNKNOWN_BUILTIN_MODULE' || process.execArgv.includes('--experimental-wasi-unstable-preview1')) throw error;
  const again = spawnSync(process.execPath, ['--experimental-wasi-unstable-preview1', ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(again.status ?? 1);
}

const args = process.argv.slice(2);
let stdin = 0;
if (args[0] === '--stdin') {
  stdin = openSync(args[1], 'r');
  args.splice(0, 2);
}
const [program, ...programArgs] = args;
if (program === undefined) {
  console.error('usage: node test/c/run-wasm.mjs [--stdin FILE] program.wasm [args...]');
  process.exit(2);
}

const module = await WebAssembly.compile(readFileSync(program));
// returnOnExit stays false: the program's exit (proc_exit) ends this process
// with its code at once. (With returnOnExit: true, Node 20 crashed now and
// then while unwinding out of the benchmark's exit.)
const wasi = new WASI({ version: 'preview1', args: [basename(program), ...programArgs], stdin, returnOnExit: false });
const instance = await WebAssembly.instantiate(module, {
  // getImportObject() is Node 18.17+; before it, the same object by hand.
  ...(wasi.getImportObject?.() ?? { wasi_snapshot_preview1: wasi.wasiImport }),
  // The module's only non-WASI import; views are not kept, so nothing to do.
  env: { emscripten_notify_memory_growth() {} },
});
try {
  wasi.start(instance);
} catch (error) {
  console.error(`${basename(program)}: trapped: ${error.stack ?? error}`);
  process.exit(1);
}
