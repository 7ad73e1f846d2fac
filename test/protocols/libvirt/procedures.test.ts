// The generated procedure module is exactly what the generator makes from the committed TSV,
// the TSV is the shared reference, and numbers agree with the wire notes (libvirt-rpc.md).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { generateProceduresModule, generatedModulePath, parseProcedureTsv, procedureTsvPath } from '../../../scripts/gen-libvirt-procedures';
import { repoRoot } from '../../helpers/paths';
import { ADMIN_PROGRAM, KEEPALIVE_PROGRAM, LXC_PROGRAM, QEMU_PROGRAM, REMOTE_PROGRAM } from '../../../src/protocols/libvirt/procedures.generated';
import { procedureName } from '../../../src/protocols/libvirt/rpc';

test('procedures.generated.ts equals a fresh generation from procedures.tsv', () => {
  const fresh = generateProceduresModule(parseProcedureTsv(fs.readFileSync(procedureTsvPath(repoRoot), 'utf8')));
  assert.equal(fs.readFileSync(generatedModulePath(repoRoot), 'utf8'), fresh);
});

const sharedTsv = path.join(repoRoot, '..', 'shared', 'reference', 'libvirt-procedures.tsv');
test('procedures.tsv is the shared reference table', { skip: fs.existsSync(sharedTsv) ? false : 'no ../shared/reference' }, () => {
  assert.equal(fs.readFileSync(procedureTsvPath(repoRoot), 'utf8'), fs.readFileSync(sharedTsv, 'utf8'));
});

test('program numbers and migration procedures agree with the wire notes', () => {
  assert.equal(REMOTE_PROGRAM.number, 0x20008086);
  assert.equal(QEMU_PROGRAM.number, 0x20008087);
  assert.equal(LXC_PROGRAM.number, 0x00068000);
  assert.equal(ADMIN_PROGRAM.number, 0x06900690);
  assert.equal(KEEPALIVE_PROGRAM.number, 0x6b656570);
  const expected: [number, string][] = [
    [1, 'CONNECT_OPEN'], [2, 'CONNECT_CLOSE'], [60, 'CONNECT_SUPPORTS_FEATURE'], [66, 'AUTH_LIST'],
    [61, 'DOMAIN_MIGRATE_PREPARE'], [62, 'DOMAIN_MIGRATE_PERFORM'], [63, 'DOMAIN_MIGRATE_FINISH'],
    [108, 'DOMAIN_MIGRATE_PREPARE2'], [109, 'DOMAIN_MIGRATE_FINISH2'], [148, 'DOMAIN_MIGRATE_PREPARE_TUNNEL'],
    [213, 'DOMAIN_MIGRATE_BEGIN3'], [214, 'DOMAIN_MIGRATE_PREPARE3'], [215, 'DOMAIN_MIGRATE_PREPARE_TUNNEL3'],
    [216, 'DOMAIN_MIGRATE_PERFORM3'], [217, 'DOMAIN_MIGRATE_FINISH3'], [218, 'DOMAIN_MIGRATE_CONFIRM3'],
    [302, 'DOMAIN_MIGRATE_BEGIN3_PARAMS'], [303, 'DOMAIN_MIGRATE_PREPARE3_PARAMS'], [304, 'DOMAIN_MIGRATE_PREPARE_TUNNEL3_PARAMS'],
    [305, 'DOMAIN_MIGRATE_PERFORM3_PARAMS'], [306, 'DOMAIN_MIGRATE_FINISH3_PARAMS'], [307, 'DOMAIN_MIGRATE_CONFIRM3_PARAMS'],
    [163, 'DOMAIN_GET_JOB_INFO'], [298, 'DOMAIN_GET_JOB_STATS'], [164, 'DOMAIN_ABORT_JOB'],
    [359, 'DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION'], [363, 'DOMAIN_EVENT_CALLBACK_JOB_COMPLETED'], [364, 'DOMAIN_MIGRATE_START_POST_COPY'],
  ];
  for (const [n, name] of expected) assert.equal(REMOTE_PROGRAM.procedures.get(n), name, `remote ${n}`);
  assert.equal(REMOTE_PROGRAM.procedures.size, 443);
  assert.equal(KEEPALIVE_PROGRAM.procedures.get(1), 'PING');
  assert.equal(KEEPALIVE_PROGRAM.procedures.get(2), 'PONG');
  assert.equal(procedureName(0x6b656570, 2), 'PONG');
  assert.equal(procedureName(0x20008086, 9999), 'remote#9999');
});

test('the TSV parser rejects malformed rows', () => {
  assert.throws(() => parseProcedureTsv('program\tprogram_hex\tversion\tprocedure\tname\nremote\t0x20008086\t1\tx\tBAD name\n'));
  assert.throws(() => parseProcedureTsv('wrong\theader\n'));
});
