// nylas.grants.* (list with limit/offset/filters, find by id and by email,
// update via PATCH, destroy) on grants made by real custom auth.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrchard, stopAndCheck, client, testEnv, expectApiError, BAD_PASSWORDS } from '../harness.js';

const env = testEnv();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const CAROL = 'carol@example.test';

let srv;
let nylas;
const grants = {}; // email → grant, in creation order alice, bob, carol

function imapSettings(user, password = env.users[user]) {
  return {
    imapUsername: user,
    imapPassword: password,
    imapHost: env.imap.host,
    imapPort: env.imap.port,
    smtpHost: env.smtp.host,
    smtpPort: env.smtp.port,
  };
}

before(async () => {
  srv = await startOrchard({ name: 'grants' });
  nylas = client(srv);
  await nylas.connectors.create({ requestBody: { provider: 'icloud' } });
  await nylas.connectors.create({ requestBody: { provider: 'imap' } });
  grants[ALICE] = (await nylas.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } },
  })).data;
  for (const u of [BOB, CAROL]) {
    grants[u] = (await nylas.auth.customAuthentication({ requestBody: { provider: 'imap', settings: imapSettings(u) } })).data;
  }
});

after(async () => {
  if (!srv) return;
  await stopAndCheck(srv);
  if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
});

const emails = (res) => res.data.map((g) => g.email);

test('list: all grants, newest first by default', async () => {
  const res = await nylas.grants.list({});
  assert.match(res.requestId, /\S/);
  assert.deepEqual(emails(res), [CAROL, BOB, ALICE]);
  for (const g of res.data) assert.equal(g.grantStatus, 'valid');
});

test('list: order_by asc, sort_by updated_at', async () => {
  const res = await nylas.grants.list({ queryParams: { orderBy: 'asc' } });
  assert.deepEqual(emails(res), [ALICE, BOB, CAROL]);
  const upd = await nylas.grants.list({ queryParams: { sortBy: 'updated_at', orderBy: 'asc' } });
  assert.equal(upd.data.length, 3);
});

test('list: limit and offset page through without overlap', async () => {
  const p1 = await nylas.grants.list({ queryParams: { limit: 2 } });
  assert.deepEqual(emails(p1), [CAROL, BOB]);
  const p2 = await nylas.grants.list({ queryParams: { limit: 2, offset: 2 } });
  assert.deepEqual(emails(p2), [ALICE]);
  const p3 = await nylas.grants.list({ queryParams: { limit: 2, offset: 3 } });
  assert.deepEqual(p3.data, []);
  const mid = await nylas.grants.list({ queryParams: { limit: 1, offset: 1 } });
  assert.deepEqual(emails(mid), [BOB]);
});

test('list: provider, email and grant_status filters', async () => {
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { provider: 'icloud' } })), [ALICE]);
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { provider: 'imap' } })), [CAROL, BOB]);
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { provider: 'imap', limit: 1, offset: 1 } })), [BOB]);
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { provider: 'google' } })), []);
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { email: BOB } })), [BOB]);
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { grantStatus: 'valid', orderBy: 'asc' } })), [ALICE, BOB, CAROL]);
  assert.deepEqual(emails(await nylas.grants.list({ queryParams: { grantStatus: 'invalid' } })), []);
});

test('list: bad query parameters → 400 naming the parameter', async () => {
  await expectApiError(nylas.grants.list({ queryParams: { limit: 0 } }), { status: 400, type: 'invalid_request_error', message: /limit must be/ }, 'limit 0');
  await expectApiError(nylas.grants.list({ queryParams: { limit: 201 } }), { status: 400, type: 'invalid_request_error', message: /limit must be a whole number between 1 and 200/ }, 'limit 201');
  await expectApiError(nylas.grants.list({ queryParams: { offset: -1 } }), { status: 400, type: 'invalid_request_error', message: /offset/ }, 'offset -1');
  await expectApiError(nylas.grants.list({ queryParams: { sortBy: 'email' } }), { status: 400, type: 'invalid_request_error', message: /sort_by must be created_at or updated_at/ }, 'sort_by');
  await expectApiError(nylas.grants.list({ queryParams: { orderBy: 'up' } }), { status: 400, type: 'invalid_request_error', message: /order_by must be asc or desc/ }, 'order_by');
  await expectApiError(nylas.grants.list({ queryParams: { grantStatus: 'ok' } }), { status: 400, type: 'invalid_request_error', message: /grant_status must be valid or invalid/ }, 'grant_status');
});

test('find by id, by email (percent-encoded by the SDK), and by grant:/email: prefixes', async () => {
  const bob = grants[BOB];
  const byId = await nylas.grants.find({ grantId: bob.id });
  assert.equal(byId.data.id, bob.id);
  assert.equal(byId.data.email, BOB);
  assert.equal(byId.data.provider, 'imap');
  assert.equal(byId.data.settings.imapHost, env.imap.host);

  const byEmail = await nylas.grants.find({ grantId: BOB }); // → GET /v3/grants/bob%40example.test
  assert.equal(byEmail.data.id, bob.id);
  const byUpper = await nylas.grants.find({ grantId: 'BOB@example.test' });
  assert.equal(byUpper.data.id, bob.id, 'email lookup is case-insensitive');
  const byPrefixedId = await nylas.grants.find({ grantId: `grant:${bob.id}` });
  assert.equal(byPrefixedId.data.id, bob.id);
  const byPrefixedEmail = await nylas.grants.find({ grantId: `email:${BOB}` });
  assert.equal(byPrefixedEmail.data.id, bob.id);
});

test('find of an unknown id or address → 404', async () => {
  await expectApiError(nylas.grants.find({ grantId: '00000000-0000-4000-8000-000000000000' }), { status: 404, type: 'not_found_error', message: /not found/ }, 'unknown id');
  await expectApiError(nylas.grants.find({ grantId: 'nobody@example.test' }), { status: 404, type: 'not_found_error', message: /not found/ }, 'unknown email');
});

test('update (PATCH) scope; it persists and leaves the rest alone', async () => {
  const alice = grants[ALICE];
  const res = await nylas.grants.update({ grantId: alice.id, requestBody: { scope: ['mail.read', 'mail.send'] } });
  assert.equal(res.data.id, alice.id);
  assert.deepEqual(res.data.scope, ['mail.read', 'mail.send']);
  assert.equal(res.data.provider, 'icloud');
  assert.equal(res.data.email, ALICE);
  assert.equal(res.data.grantStatus, 'valid');
  const found = await nylas.grants.find({ grantId: alice.id });
  assert.deepEqual(found.data.scope, ['mail.read', 'mail.send']);
  assert.equal(found.data.createdAt, alice.createdAt);

  const byEmail = await nylas.grants.update({ grantId: ALICE, requestBody: { scope: [] } });
  assert.equal(byEmail.data.id, alice.id, 'update by email address');
  assert.deepEqual(byEmail.data.scope, []);
});

test('update settings re-checks the credentials with the provider', async () => {
  const bob = grants[BOB];
  const ok = await nylas.grants.update({ grantId: bob.id, requestBody: { settings: imapSettings(BOB) } });
  assert.equal(ok.data.grantStatus, 'valid');
  assert.equal(ok.data.id, bob.id);

  await expectApiError(
    nylas.grants.update({ grantId: bob.id, requestBody: { settings: imapSettings(BOB, BAD_PASSWORDS.imap) } }),
    { status: 401, type: 'provider_error', message: /imap server refused the login/, not: [BAD_PASSWORDS.imap] },
    'wrong password on update',
  );
  await expectApiError(
    nylas.grants.update({ grantId: bob.id, requestBody: { settings: imapSettings(CAROL) } }),
    { status: 400, type: 'invalid_request_error', message: [/carol@example\.test/, /bob@example\.test/, /POST \/v3\/connect\/custom/] },
    'settings for another mailbox',
  );
  await expectApiError(
    nylas.grants.update({ grantId: bob.id, requestBody: { settings: { ...imapSettings(BOB), imapPort: 'abc' } } }),
    { status: 400, type: 'invalid_request_error', message: /settings\.imap_port must be a port number/ },
    'bad port on update',
  );
  const after = await nylas.grants.find({ grantId: bob.id });
  assert.equal(after.data.grantStatus, 'valid', 'a refused update leaves the grant as it was');
});

test('destroy, then find/update/destroy → 404; the others remain', async () => {
  const carol = grants[CAROL];
  const del = await nylas.grants.destroy({ grantId: carol.id });
  assert.match(del.requestId, /\S/);
  await expectApiError(nylas.grants.find({ grantId: carol.id }), { status: 404, type: 'not_found_error' }, 'find after destroy');
  await expectApiError(nylas.grants.find({ grantId: CAROL }), { status: 404, type: 'not_found_error' }, 'find by email after destroy');
  await expectApiError(nylas.grants.update({ grantId: carol.id, requestBody: { scope: [] } }), { status: 404, type: 'not_found_error' }, 'update after destroy');
  await expectApiError(nylas.grants.destroy({ grantId: carol.id }), { status: 404, type: 'not_found_error' }, 'destroy twice');
  assert.deepEqual(emails(await nylas.grants.list({})), [BOB, ALICE]);
});

test('destroy by email address; re-authenticating afterwards makes a NEW grant', async () => {
  const bob = grants[BOB];
  await nylas.grants.destroy({ grantId: BOB });
  await expectApiError(nylas.grants.find({ grantId: bob.id }), { status: 404, type: 'not_found_error' }, 'find after destroy by email');
  const again = await nylas.auth.customAuthentication({ requestBody: { provider: 'imap', settings: imapSettings(BOB) } });
  assert.notEqual(again.data.id, bob.id, 'a destroyed grant is not resurrected');
  assert.equal(again.data.email, BOB);
});
