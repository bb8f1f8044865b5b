#!/usr/bin/env node
// Regenerates the API types from ../openapi.yaml into a temporary file and
// fails when the committed src/api/schema.d.ts differs from it: the client
// must never drift from the server's spec. Fix with `npm run generate`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const spec = resolve(root, '..', 'openapi.yaml');
const committed = join(root, 'src', 'api', 'schema.d.ts');
const dir = mkdtempSync(join(tmpdir(), 'latchkey-schema-'));
const fresh = join(dir, 'schema.d.ts');

try {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js'), spec, '-o', fresh],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const want = readFileSync(fresh, 'utf8');
  let have;
  try {
    have = readFileSync(committed, 'utf8');
  } catch {
    have = '';
  }
  if (want !== have) {
    const a = have.split('\n');
    const b = want.split('\n');
    let line = 0;
    while (line < Math.max(a.length, b.length) && a[line] === b[line]) line++;
    console.error(`src/api/schema.d.ts is out of date with ../openapi.yaml (first difference at line ${line + 1}):`);
    console.error(`  committed: ${JSON.stringify(a[line] ?? '<end of file>')}`);
    console.error(`  generated: ${JSON.stringify(b[line] ?? '<end of file>')}`);
    console.error('Run `npm run generate` and commit the result.');
    process.exit(1);
  }
  console.log('src/api/schema.d.ts matches ../openapi.yaml');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
