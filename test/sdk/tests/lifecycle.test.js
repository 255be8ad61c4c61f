// Process lifecycle of `orchard serve`: the bootstrap "default" app on an
// empty database, SIGTERM with a request in flight, restart on the same
// data dir.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import {
  startOrchard, startOrchardOn, stopAndCheck, client, testEnv, orchardBin, startSilentServer, freePort, BAD_PASSWORDS,
} from '../harness.js';

const env = testEnv();
const ALICE = 'alice@example.test';
const started = [];
const start = async (opts) => {
  const s = await startOrchard(opts);
  started.push(s);
  return s;
};

after(async () => {
  for (const s of started) {
    await s.stop();
    if (!process.env.ORCHARD_SDK_KEEP) s.cleanup();
  }
});

test('empty database: serve creates app "default" and prints its key once on stdout; the key works', async () => {
  const srv = await start({ name: 'bootstrap', apps: [] });
  const out = srv.stdout();
  assert.match(out, /Created application "default"/);
  const key = /API key:\s+(\S+)/.exec(out)?.[1];
  const appId = /application id:\s+(\S+)/.exec(out)?.[1];
  assert.ok(key && appId, `stdout has the id and key:\n${out}`);
  assert.ok(!srv.log().includes(key), 'the bootstrap key is not in the log (stderr)');

  const nylas = client(srv, key);
  assert.deepEqual((await nylas.connectors.list({})).data, []);
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  await stopAndCheck(srv);

  // Restarting on the now non-empty database creates nothing and prints no key.
  const again = await restart(srv);
  assert.equal(again.stdout(), '', 'no bootstrap on a non-empty database');
  assert.equal((await client(again, key).connectors.list({})).data.length, 1, 'the key and data survive a restart');
  await stopAndCheck(again);
});

test('app create before the first serve: no "default" app is made', async () => {
  const srv = await start({ name: 'no-bootstrap', apps: ['mine'] });
  assert.doesNotMatch(srv.stdout(), /Created application/);
  assert.deepEqual((await client(srv).grants.list({})).data, []);
  await stopAndCheck(srv);
});

test('SIGTERM exits 0 promptly; an in-flight request still gets its answer', async () => {
  const silent = await startSilentServer();
  try {
    const srv = await start({ name: 'sigterm' });
    const nylas = client(srv);
    await nylas.connectors.create({ requestBody: { provider: 'imap' } });
    const inflight = nylas.auth.customAuthentication({
      requestBody: {
        provider: 'imap',
        settings: {
          imapUsername: ALICE, imapPassword: BAD_PASSWORDS.timeout, imapHost: '127.0.0.1', imapPort: silent.port,
          smtpHost: env.smtp.host, smtpPort: env.smtp.port,
        },
      },
    }).then((r) => r, (e) => e);
    // Wait until orchard has connected to the silent server, then stop it.
    const t0 = Date.now();
    while (silent.connections() === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.ok(silent.connections() > 0, 'orchard connected to the silent IMAP server');
    const stopped = srv.stop();
    const res = await inflight;
    assert.equal(res.statusCode, 504, `in-flight request answered during shutdown: ${res.message ?? JSON.stringify(res)}`);
    const st = await stopAndCheck(srv);
    assert.equal((await stopped).code, 0);
    assert.ok(st.ms < 6000, `stopped ${st.ms} ms after SIGTERM`);
    // The port is closed after exit.
    await assert.rejects(fetch(`${srv.url}/healthz`), 'no longer listening');
  } finally {
    await silent.close();
  }
});

test('grants survive a restart on the same data dir', async () => {
  const srv = await start({ name: 'restart' });
  const nylas = client(srv);
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  const g = (await nylas.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } },
  })).data;
  await stopAndCheck(srv);

  const again = await restart(srv);
  const n2 = client(again, srv.apiKey);
  const found = await n2.grants.find({ grantId: ALICE });
  assert.equal(found.data.id, g.id);
  assert.equal(found.data.grantStatus, 'valid');
  // Re-auth after the restart keeps the id (the sealed credentials and key file are reused).
  const re = await n2.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } },
  });
  assert.equal(re.data.id, g.id);
  await stopAndCheck(again);
});

test('invalid configuration: serve exits non-zero and names the variable', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchard-sdk-badcfg-'));
  try {
    const port = await freePort();
    const proc = spawn(orchardBin(), ['serve'], {
      env: { PATH: process.env.PATH, ORCHARD_DATA_DIR: dataDir, ORCHARD_LISTEN: `127.0.0.1:${port}`, ORCHARD_PROVIDER_TIMEOUT: 'soon' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => proc.on('exit', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /ORCHARD_PROVIDER_TIMEOUT/);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Starts serve again on srv's data dir and port (same env). */
async function restart(srv) {
  const s = await startOrchardOn(srv);
  started.push(s);
  return s;
}
