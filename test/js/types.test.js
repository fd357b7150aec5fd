// The TypeScript declarations accept what the README shows and reject misuse
// (test/types/usage.ts, compiled with tsc --strict).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = `${root}node_modules/typescript/bin/tsc`;

test('index.d.ts type-checks the documented usage under --strict', { skip: !existsSync(tsc) && 'typescript is not installed (npm ci)' }, () => {
  try {
    execFileSync(process.execPath, [tsc, '-p', 'test/types'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    assert.fail(`tsc reported:\n${error.stdout}${error.stderr}`);
  }
});
