// Mail servers that are down, hang or present an untrusted certificate:
// custom auth must answer 503 / 504 / 400 with a helpful message, within
// bounded time (ORCHARD_PROVIDER_TIMEOUT=3s in the harness).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startOrchard, stopAndCheck, client, testEnv, expectApiError, freePort, startSilentServer, BAD_PASSWORDS,
} from '../harness.js';

const env = testEnv();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';

let srv; // trusts the test CA
let noCA; // started WITHOUT ORCHARD_CA_FILE
let silent;
let nylas;

before(async () => {
  [srv, noCA, silent] = await Promise.all([
    startOrchard({ name: 'provider-errors' }),
    startOrchard({ name: 'no-ca', ca: false }),
    startSilentServer(),
  ]);
  nylas = client(srv);
  for (const s of [srv, noCA]) {
    const n = client(s);
    await n.connectors.create({ requestBody: { provider: 'icloud' } });
    await n.connectors.create({ requestBody: { provider: 'imap' } });
  }
});

after(async () => {
  await silent?.close();
  for (const s of [srv, noCA]) {
    if (!s) continue;
    await stopAndCheck(s);
    if (!process.env.ORCHARD_SDK_KEEP) s.cleanup();
  }
});

const settings = (over = {}) => ({
  imapUsername: BOB,
  imapPassword: env.users[BOB],
  imapHost: env.imap.host,
  imapPort: env.imap.port,
  smtpHost: env.smtp.host,
  smtpPort: env.smtp.port,
  ...over,
});
const imapAuth = (n, s) => n.auth.customAuthentication({ requestBody: { provider: 'imap', settings: s } });

test('IMAP host that refuses connections (closed port) → 503, quickly, with Retry-After', async () => {
  const port = await freePort();
  const t0 = Date.now();
  const err = await expectApiError(
    imapAuth(nylas, settings({ imapPort: port, imapPassword: BAD_PASSWORDS.refused })),
    { status: 503, type: 'provider_error', message: [/imap server/, new RegExp(`127\\.0\\.0\\.1:${port}`), /unavailable/, /try again later/], not: [BAD_PASSWORDS.refused] },
    'refused imap',
  );
  assert.ok(Date.now() - t0 < 3000, `refusal should be immediate, took ${Date.now() - t0} ms`);
  assert.match(err.headers['retry-after'] ?? '', /^[1-9]\d*$/, 'Retry-After on a transient failure');
  assert.equal(err.providerError?.service, 'imap');
});

test('SMTP host that refuses connections (IMAP fine) → 503 naming smtp; no grant made', async () => {
  const port = await freePort();
  await expectApiError(
    imapAuth(nylas, settings({ smtpPort: port })),
    { status: 503, type: 'provider_error', message: [/smtp server/, new RegExp(`127\\.0\\.0\\.1:${port}`), /unavailable/] },
    'refused smtp',
  );
  assert.deepEqual((await nylas.grants.list({})).data, []);
});

test('IMAP host that accepts and never answers → 504 in bounded time', async () => {
  const t0 = Date.now();
  const err = await expectApiError(
    imapAuth(nylas, settings({ imapPort: silent.port, imapPassword: BAD_PASSWORDS.timeout })),
    { status: 504, type: 'provider_error', message: [/did not answer in time/, new RegExp(`127\\.0\\.0\\.1:${silent.port}`)], not: [BAD_PASSWORDS.timeout] },
    'silent imap',
  );
  const ms = Date.now() - t0;
  assert.ok(ms < 10000, `504 must come within 10 s (provider timeout 3 s), took ${ms} ms`);
  assert.ok(ms >= 2500, `the server should wait for the provider timeout (3 s), answered after ${ms} ms`);
  assert.match(err.headers['retry-after'] ?? '', /^[1-9]\d*$/, 'Retry-After on a timeout');
});

test('SMTP host that accepts and never answers → 504 naming smtp', async () => {
  const t0 = Date.now();
  await expectApiError(
    imapAuth(nylas, settings({ smtpPort: silent.port })),
    { status: 504, type: 'provider_error', message: [/smtp server/, /did not answer in time/] },
    'silent smtp',
  );
  assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
});

test('server without ORCHARD_CA_FILE: IMAP with the test CA certificate → 400 provider_error telling to add the CA', async () => {
  const err = await expectApiError(
    imapAuth(client(noCA), settings({ imapPassword: BAD_PASSWORDS.untrusted })),
    {
      status: 400,
      type: 'provider_error',
      message: [/secure connection to the imap server 127\.0\.0\.1:\d+ failed/, /ORCHARD_CA_FILE/],
      not: [BAD_PASSWORDS.untrusted],
    },
    'untrusted imap certificate',
  );
  assert.equal(err.headers['retry-after'], undefined, 'a TLS failure is permanent');
  assert.deepEqual((await client(noCA).grants.list({})).data, []);
});

test('server without ORCHARD_CA_FILE: iCloud custom auth → 400 provider_error as well', async () => {
  await expectApiError(
    client(noCA).auth.customAuthentication({ requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } } }),
    { status: 400, type: 'provider_error', message: /ORCHARD_CA_FILE/ },
    'untrusted icloud certificate',
  );
});

test('the same request on the server that trusts the CA succeeds', async () => {
  const res = await imapAuth(nylas, settings());
  assert.equal(res.data.grantStatus, 'valid');
  assert.equal(res.data.email, BOB);
});
