// The TypeScript declarations accept what the README shows and reject misuse,
// compiled with tsc --strict:
// - test/types/usage.ts: every declaration, with no other package's types
//   (skipLibCheck off, so the .d.ts files themselves are checked too);
// - test/types/real/: the README's examples against the real types of
//   @tensorflow/tfjs and onnxruntime-web, with node16 resolution (ESM and a
//   CommonJS .cts through require) and with bundler resolution. TF.js's own
//   declarations do not pass a lib check, so these skip it, as TF.js users must.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = `${root}node_modules/typescript/bin/tsc`;
const skip = !existsSync(tsc) && 'typescript is not installed (npm ci)';

function typeCheck(project) {
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    assert.fail(`tsc -p ${project} reported:\n${error.stdout}${error.stderr}`);
  }
}

test('index.d.ts type-checks the documented usage under --strict', { skip }, () => {
  typeCheck('test/types');
});

test('the README examples type-check against the real TF.js and onnxruntime-web types, node16 resolution (ESM and CommonJS)', { skip }, () => {
  typeCheck('test/types/real/tsconfig.node16.json');
});

test('the README examples type-check against the real TF.js and onnxruntime-web types, bundler resolution', { skip }, () => {
  typeCheck('test/types/real/tsconfig.bundler.json');
});
