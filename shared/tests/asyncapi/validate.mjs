// Validates an AsyncAPI document with the AsyncAPI project's parser; prints one JSON line:
// {"valid": bool, "errors": [...], "warnings": [...]} and exits 0 when valid, 1 when not.
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], 'utf8'));
const describe = (d) => ({ code: d.code, message: d.message, path: d.path.join('/') });
// Spectral severities: 0 error, 1 warning, 2 information, 3 hint.
const errors = diagnostics.filter((d) => d.severity === 0).map(describe);
const warnings = diagnostics.filter((d) => d.severity === 1).map(describe);
const valid = document !== undefined && errors.length === 0;
console.log(JSON.stringify({ valid, errors, warnings }));
process.exit(valid ? 0 : 1);
