// Two applications on one server (both made with `orchard app create`):
// neither can see, change or delete the other's grants or connectors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOrchard, stopAndCheck, client, testEnv, expectApiError } from '../harness.js';

const env = testEnv();
const ALICE = 'alice@example.test';

let srv;
let a; // owner of the grant
let b; // the other application
let grant;

before(async () => {
  srv = await startOrchard({ name: 'isolation', apps: ['app-a', 'app-b'] });
  assert.notEqual(srv.apps[0].appId, srv.apps[1].appId);
  assert.notEqual(srv.apps[0].apiKey, srv.apps[1].apiKey);
  a = client(srv, srv.apps[0].apiKey);
  b = client(srv, srv.apps[1].apiKey);
  await a.connectors.create({ requestBody: { provider: 'icloud' } });
  grant = (await a.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } },
  })).data;
});

after(async () => {
  if (!srv) return;
  await stopAndCheck(srv);
  if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
});

test("another application's grant → 404 for find, update and destroy (by id and by email)", async () => {
  for (const ref of [grant.id, ALICE, `grant:${grant.id}`]) {
    await expectApiError(b.grants.find({ grantId: ref }), { status: 404, type: 'not_found_error', message: /not found/ }, `find ${ref}`);
    await expectApiError(
      b.grants.update({ grantId: ref, requestBody: { scope: ['stolen'] } }),
      { status: 404, type: 'not_found_error' },
      `update ${ref}`,
    );
    await expectApiError(b.grants.destroy({ grantId: ref }), { status: 404, type: 'not_found_error' }, `destroy ${ref}`);
  }
  const still = await a.grants.find({ grantId: grant.id });
  assert.equal(still.data.id, grant.id, 'the owner still has the grant');
  assert.deepEqual(still.data.scope, [], 'scope untouched by the other app');
});

test("another application's grants and connectors are not listed", async () => {
  assert.deepEqual((await b.grants.list({})).data, []);
  assert.deepEqual((await b.grants.list({ queryParams: { email: ALICE } })).data, []);
  assert.deepEqual((await b.connectors.list({})).data, []);
  await expectApiError(b.connectors.find({ provider: 'icloud' }), { status: 404, type: 'not_found_error' }, 'other app connector');
  await expectApiError(b.connectors.destroy({ provider: 'icloud' }), { status: 404, type: 'not_found_error' }, 'destroy other app connector');
  assert.equal((await a.connectors.find({ provider: 'icloud' })).data.provider, 'icloud');
});

test("a connector of one application does not enable custom auth for another", async () => {
  await expectApiError(
    b.auth.customAuthentication({ requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } } }),
    { status: 400, type: 'invalid_request_error', message: /no icloud connector/ },
    'app b without connector',
  );
});

test('the same mailbox in two applications gives two independent grants', async () => {
  await b.connectors.create({ requestBody: { provider: 'icloud' } });
  const gb = (await b.auth.customAuthentication({
    requestBody: { provider: 'icloud', settings: { username: ALICE, password: env.users[ALICE] } },
  })).data;
  assert.notEqual(gb.id, grant.id);
  assert.equal((await b.grants.find({ grantId: ALICE })).data.id, gb.id);
  assert.equal((await a.grants.find({ grantId: ALICE })).data.id, grant.id);

  await b.grants.destroy({ grantId: gb.id });
  assert.equal((await a.grants.find({ grantId: grant.id })).data.id, grant.id, "b's destroy leaves a's grant");
  await expectApiError(a.grants.find({ grantId: gb.id }), { status: 404, type: 'not_found_error' }, "a cannot see b's (deleted) grant");
});
