// Errors of POST /v3/connect/custom and of API-key authentication, as the
// SDK surfaces them: NylasApiError with statusCode, type, a message that
// says what to fix, and requestId from the X-Request-Id header.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrchard, stopAndCheck, client, testEnv, expectApiError, BAD_PASSWORDS } from '../harness.js';
import Nylas from 'nylas';

const env = testEnv();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';

let srv;
let nylas;

before(async () => {
  srv = await startOrchard({ name: 'auth-errors' });
  nylas = client(srv);
});

after(async () => {
  if (!srv) return;
  await stopAndCheck(srv);
  if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
});

const icloud = (settings) => nylas.auth.customAuthentication({ requestBody: { provider: 'icloud', settings } });
const imap = (settings) => nylas.auth.customAuthentication({ requestBody: { provider: 'imap', settings } });
const bobImap = (over = {}) => ({
  imapUsername: BOB,
  imapPassword: env.users[BOB],
  imapHost: env.imap.host,
  imapPort: env.imap.port,
  smtpHost: env.smtp.host,
  smtpPort: env.smtp.port,
  ...over,
});

test('grant for a provider without a connector → 400 telling to add the connector', async () => {
  await expectApiError(
    icloud({ username: ALICE, password: env.users[ALICE] }),
    { status: 400, type: 'invalid_request_error', message: [/no icloud connector/, /POST \/v3\/connectors/, /"provider":"icloud"/] },
    'icloud without connector',
  );
  await expectApiError(
    imap(bobImap()),
    { status: 400, type: 'invalid_request_error', message: [/no imap connector/, /POST \/v3\/connectors/] },
    'imap without connector',
  );
  assert.deepEqual((await nylas.grants.list({})).data, [], 'no grant was made');
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  await nylas.connectors.create({ requestBody: { provider: 'imap' } });
});

test('icloud wrong password → 401 pointing to app-specific passwords, without echoing the password', async () => {
  const err = await expectApiError(
    icloud({ username: ALICE, password: BAD_PASSWORDS.icloud }),
    {
      status: 401,
      type: 'provider_error',
      message: [/app-specific password/i, /appleid\.apple\.com/],
      not: [BAD_PASSWORDS.icloud, env.users[ALICE]],
    },
    'icloud wrong password',
  );
  assert.ok(err.providerError, 'provider_error detail present');
  assert.ok(!JSON.stringify(err.providerError).includes(BAD_PASSWORDS.icloud), 'provider_error must not echo the password');
  assert.equal(err.headers['retry-after'], undefined, 'a refused login is not worth retrying');
  assert.deepEqual((await nylas.grants.list({})).data, [], 'no grant was made');
});

test('icloud: any other wrong password is refused the same way', async () => {
  await expectApiError(
    icloud({ username: ALICE, password: BAD_PASSWORDS.other }),
    { status: 401, type: 'provider_error', message: /appleid\.apple\.com/, not: [BAD_PASSWORDS.other] },
    'icloud other wrong password',
  );
});

test('imap wrong password → 401 saying the server refused the login (no Apple advice)', async () => {
  const err = await expectApiError(
    imap(bobImap({ imapPassword: BAD_PASSWORDS.imap })),
    { status: 401, type: 'provider_error', message: /imap server refused the login/, not: [BAD_PASSWORDS.imap] },
    'imap wrong password',
  );
  assert.doesNotMatch(err.message, /apple/i);
});

test('imap: right IMAP password but wrong SMTP password → 401 naming smtp', async () => {
  await expectApiError(
    imap(bobImap({ smtpUsername: BOB, smtpPassword: BAD_PASSWORDS.other })),
    { status: 401, type: 'provider_error', message: /smtp server refused the login/, not: [BAD_PASSWORDS.other, env.users[BOB]] },
    'smtp wrong password',
  );
  assert.deepEqual((await nylas.grants.list({})).data, [], 'no grant was made');
});

test('unknown provider → 400 naming the supported ones', async () => {
  await expectApiError(
    nylas.auth.customAuthentication({ requestBody: { provider: 'google', settings: { refreshToken: 'x' } } }),
    { status: 400, type: 'invalid_request_error', message: [/unknown provider "google"/, /icloud and imap/] },
    'google',
  );
  await expectApiError(
    nylas.auth.customAuthentication({ requestBody: { provider: '', settings: {} } }),
    { status: 400, type: 'invalid_request_error', message: /provider is required/ },
    'empty provider',
  );
});

test('missing or malformed settings → 400 naming the setting', async () => {
  const cases = [
    ['no settings', () => nylas.auth.customAuthentication({ requestBody: { provider: 'icloud' } }), /settings is required/],
    ['missing settings.password', () => icloud({ username: ALICE }), /settings\.password is required/],
    ['missing settings.username', () => icloud({ password: env.users[ALICE] }), /settings\.username is required/],
    ['empty password', () => icloud({ username: ALICE, password: '   ' }), /settings\.password must not be empty/],
    ['numeric password', () => icloud({ username: ALICE, password: 1234 }), /settings\.password must be a string/],
    ['username not an address', () => icloud({ username: 'alice', password: env.users[ALICE] }), /settings\.username must be the iCloud email address/],
    ['non-numeric imap_port', () => imap(bobImap({ imapPort: 'imaps' })), /settings\.imap_port must be a port number between 1 and 65535/],
    ['imap_port out of range', () => imap(bobImap({ imapPort: 70000 })), /settings\.imap_port must be a port number/],
    ['smtp_port 0', () => imap(bobImap({ smtpPort: 0 })), /settings\.smtp_port must be a port number/],
    ['missing imap_host', () => imap(bobImap({ imapHost: undefined })), /settings\.imap_host is required/],
    ['host with scheme', () => imap(bobImap({ imapHost: 'imaps://127.0.0.1' })), /settings\.imap_host must be a host name or IP address/],
    ['host with port', () => imap(bobImap({ smtpHost: 'localhost:587' })), /settings\.smtp_host must be a host name or IP address/],
    ['missing imap_password', () => imap(bobImap({ imapPassword: undefined })), /settings\.imap_password is required/],
    ['username not an address, no email', () => imap(bobImap({ imapUsername: 'bob' })), /add settings\.email/],
    ['bad settings.email', () => imap(bobImap({ email: 'not-an-address' })), /settings\.email must be an email address/],
  ];
  for (const [label, call, re] of cases) {
    await expectApiError(call(), { status: 400, type: 'invalid_request_error', message: re, not: [env.users[ALICE], env.users[BOB]] }, label);
  }
});

test('a body that is not JSON → 400 (raw HTTP; the SDK always sends JSON)', async () => {
  const r = await fetch(`${srv.url}/v3/connect/custom`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${srv.apiKey}`, 'Content-Type': 'application/json' },
    body: `{"provider":"icloud","settings":{"password":"${BAD_PASSWORDS.other}"`,
  });
  assert.equal(r.status, 400);
  assert.match(r.headers.get('x-request-id') ?? '', /\S/);
  const j = await r.json();
  assert.equal(typeof j.error?.type, 'string');
  assert.equal(typeof j.error?.message, 'string');
  assert.ok(!j.error.message.includes(BAD_PASSWORDS.other), 'the decode error must not echo the body');
  assert.equal(j.request_id, r.headers.get('x-request-id'));
});

test('a body over ORCHARD_MAX_BODY_BYTES (1 MiB default) → 413', async () => {
  await expectApiError(
    imap(bobImap({ imapPassword: 'x'.repeat(2 << 20) })),
    { status: 413, type: 'request_too_large', message: /larger than the limit of 1048576 bytes/ },
    '2 MiB body',
  );
});

test('wrong API key → 401 unauthorized', async () => {
  const bad = new Nylas({ apiKey: 'ork_thisIsNotAKeyThatExistsOnThisServer000000', apiUri: srv.url });
  await expectApiError(bad.grants.list({}), { status: 401, type: 'unauthorized', message: /invalid API key/ }, 'wrong key, grants.list');
  await expectApiError(bad.connectors.list({}), { status: 401, type: 'unauthorized', message: /invalid API key/ }, 'wrong key, connectors.list');
  await expectApiError(
    bad.auth.customAuthentication({ requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } } }),
    { status: 401, type: 'unauthorized', message: /invalid API key/ },
    'wrong key, custom auth',
  );
  const garbage = new Nylas({ apiKey: 'nyk_v0_0000', apiUri: srv.url });
  await expectApiError(garbage.grants.list({}), { status: 401, type: 'unauthorized' }, 'foreign key format');
  // A valid key with one character changed.
  const flipped = srv.apiKey.slice(0, -1) + (srv.apiKey.endsWith('A') ? 'B' : 'A');
  await expectApiError(client(srv, flipped).grants.list({}), { status: 401, type: 'unauthorized' }, 'flipped key');
});

test('no API key at all → 401 saying how to send one', async () => {
  const r = await fetch(`${srv.url}/v3/grants`);
  assert.equal(r.status, 401);
  const j = await r.json();
  assert.equal(j.error.type, 'unauthorized');
  assert.match(j.error.message, /Authorization: Bearer/);
  const basic = await fetch(`${srv.url}/v3/grants`, { headers: { Authorization: `Basic ${Buffer.from(srv.apiKey + ':').toString('base64')}` } });
  assert.equal(basic.status, 401, 'only Bearer authenticates');
});

test('unknown route → 404 envelope, wrong method → 405', async () => {
  const r = await fetch(`${srv.url}/v3/nope`, { headers: { Authorization: `Bearer ${srv.apiKey}` } });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.type, 'not_found_error');
  const m = await fetch(`${srv.url}/v3/connect/custom`, { headers: { Authorization: `Bearer ${srv.apiKey}` } });
  assert.equal(m.status, 405);
  assert.match(m.headers.get('allow') ?? '', /POST/);
});
