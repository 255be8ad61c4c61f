// nylas.folders.list/find on carol's mailbox: the system folders with
// their attributes, and total_count / unread_count that agree with the
// IMAP server's STATUS and follow new mail and flag changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startOrchard, stopAndCheck, client, expectApiError, connectMailbox, smtpInject, buildMessage, runTag,
  imapSession, waitFor, removeTagged, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test';
const TAG = runTag('fld');
const SYSTEM = {
  INBOX: null, // Dovecot gives INBOX no special-use attribute
  'Sent Messages': '\\Sent',
  'Deleted Messages': '\\Trash',
  Drafts: '\\Drafts',
  Junk: '\\Junk',
  Archive: '\\Archive',
};

let srv;
let nylas;
let grant;
let im;
let initial; // name → folder, right after the initial sync

const folderMap = async () => Object.fromEntries((await nylas.folders.list({ identifier: grant.id })).data.map((f) => [f.name, f]));
const counts = (f) => ({ total: f.totalCount, unread: f.unreadCount });

before(async () => {
  // Archive is polled every second; INBOX changes come through IDLE.
  srv = await startOrchard({ name: 'folders', env: { ...MAIL_ENV, ORCHARD_SYNC_POLL_INTERVAL: '1s' } });
  nylas = client(srv);
  grant = await connectMailbox(srv, nylas, CAROL);
  im = await imapSession(CAROL);
  initial = await folderMap();
});

after(async () => {
  // A failed folder test must not leave its folders behind for the next run.
  for (const n of [`sdk-${TAG}-renamed/child`, `sdk-${TAG}-renamed`, `sdk-${TAG}/child`, `sdk-${TAG}`]) {
    await im?.deleteFolder(n).catch(() => {});
  }
  await im?.close();
  if (srv) {
    await stopAndCheck(srv);
    if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
  }
  await removeTagged(CAROL, TAG, ['INBOX', 'Archive']);
});

test('list: the system folders with their special-use attributes; Notes is left out', async () => {
  const res = await nylas.folders.list({ identifier: grant.id });
  assert.match(res.requestId, /\S/);
  const names = res.data.map((f) => f.name);
  for (const n of Object.keys(SYSTEM)) assert.ok(names.includes(n), `${n} in ${JSON.stringify(names)}`);
  assert.ok(!names.includes('Notes'), `Notes (iCloud notes, not mail) is not listed: ${JSON.stringify(names)}`);
  const onServer = await im.list();
  assert.ok(onServer.includes('Notes'), `the IMAP server has Notes: ${JSON.stringify(onServer)}`);
  assert.deepEqual([...names].sort(), onServer.filter((n) => n !== 'Notes').sort(), 'every other IMAP folder is listed');
  assert.equal(new Set(res.data.map((f) => f.id)).size, res.data.length, 'ids are unique');
  assert.ok(!res.nextCursor, 'one page');
  for (const f of res.data) {
    assert.equal(f.object, 'folder');
    assert.equal(f.grantId, grant.id);
    assert.match(f.id, /\S/);
    assert.ok(Array.isArray(f.attributes), `${f.name}.attributes is an array`);
    assert.equal(typeof f.totalCount, 'number');
    assert.equal(typeof f.unreadCount, 'number');
  }
  for (const [n, attr] of Object.entries(SYSTEM)) {
    const f = res.data.find((x) => x.name === n);
    assert.equal(f.systemFolder, true, `${n}.system_folder`);
    if (attr) assert.ok(f.attributes.includes(attr), `${n}.attributes ${JSON.stringify(f.attributes)} has ${attr}`);
  }
});

test('counts agree with the IMAP server (STATUS MESSAGES UNSEEN)', async () => {
  const now = await folderMap();
  for (const n of Object.keys(SYSTEM)) {
    const st = await im.status(n);
    assert.deepEqual(counts(now[n]), { total: st.messages, unread: st.unseen }, `${n}: API vs IMAP STATUS`);
  }
});

test('counts follow new mail (SMTP into INBOX, APPEND into Archive) and flag changes', async () => {
  const before = await folderMap();
  const subject = (n) => `${TAG} count ${n}`;
  for (const n of [1, 2, 3]) {
    await smtpInject({ rcpts: [CAROL], data: buildMessage({ from: `c${n}.${TAG}@x.example`, to: CAROL, subject: subject(n), messageId: `<c${n}.${TAG}@sdk.test>`, text: `count ${n}` }) });
  }
  await im.append('INBOX', buildMessage({ from: `s.${TAG}@x.example`, to: CAROL, subject: subject('seen'), messageId: `<seen.${TAG}@sdk.test>`, text: 'seen' }), { flags: ['\\Seen'] });
  await im.append('Archive', buildMessage({ from: `a.${TAG}@x.example`, to: CAROL, subject: subject('archived'), messageId: `<arch.${TAG}@sdk.test>`, text: 'archived' }));

  let listed = [];
  await waitFor(async () => (listed = (await nylas.messages.list({ identifier: grant.id, queryParams: { subject: TAG } })).data).length === 5,
    { timeout: 15000, what: () => `5 messages, got ${listed.map((m) => m.subject)}` });
  const after = await folderMap();
  const delta = (n) => ({ total: after[n].totalCount - before[n].totalCount, unread: after[n].unreadCount - before[n].unreadCount });
  assert.deepEqual(delta('INBOX'), { total: 4, unread: 3 }, 'INBOX: +4 messages, +3 unread');
  assert.deepEqual(delta('Archive'), { total: 1, unread: 1 }, 'Archive: +1, +1');
  assert.deepEqual(delta('Junk'), { total: 0, unread: 0 });
  for (const n of ['INBOX', 'Archive']) {
    const st = await im.status(n);
    assert.deepEqual(counts(after[n]), { total: st.messages, unread: st.unseen }, `${n}: API vs IMAP STATUS after new mail`);
  }

  // Another client reads and flags message 1: unread_count drops by one.
  const [uid] = await im.search('INBOX', subject(1));
  assert.ok(uid, 'UID of message 1');
  await im.store('INBOX', uid, '+FLAGS.SILENT (\\Seen \\Flagged)');
  const m1 = listed.find((m) => m.subject === subject(1));
  await waitFor(async () => {
    const m = (await nylas.messages.find({ identifier: grant.id, messageId: m1.id })).data;
    return !m.unread && m.starred;
  }, { timeout: 10000, what: 'the flag change on message 1' });
  const flagged = await folderMap();
  assert.deepEqual(counts(flagged.INBOX), { total: after.INBOX.totalCount, unread: after.INBOX.unreadCount - 1 });
});

test('find by id equals the listed folder; unknown id → 404; select', async () => {
  const all = await folderMap();
  for (const n of ['INBOX', 'Sent Messages']) {
    const res = await nylas.folders.find({ identifier: grant.id, folderId: all[n].id });
    assert.deepEqual(res.data, all[n]);
  }
  assert.equal(all.INBOX.id, initial.INBOX.id, 'ids are stable');
  await expectApiError(nylas.folders.find({ identifier: grant.id, folderId: 'no-such-folder-id' }),
    { status: 404, type: 'not_found_error', message: /no-such-folder-id/ }, 'unknown folder');
  const sel = await nylas.folders.list({ identifier: grant.id, queryParams: { select: 'id,name' } });
  assert.ok(sel.data.length >= 6);
  for (const f of sel.data) assert.deepEqual(Object.keys(f).sort(), ['id', 'name']);
});

test('every folder id a message names is a listed folder', async () => {
  const ids = new Set(Object.values(await folderMap()).map((f) => f.id));
  const msgs = (await nylas.messages.list({ identifier: grant.id, queryParams: { subject: TAG } })).data;
  assert.equal(msgs.length, 5);
  for (const m of msgs) {
    assert.equal(m.folders.length, 1, `${m.subject}: one folder`);
    assert.ok(ids.has(m.folders[0]), `${m.subject}: folder ${m.folders[0]} is listed`);
  }
});

test('folders.create, update (rename, keeps the id) and destroy change the IMAP server', async () => {
  const name = `sdk-${TAG}`;
  const created = (await nylas.folders.create({ identifier: grant.id, requestBody: { name } })).data;
  assert.equal(created.name, name);
  assert.ok((await im.list()).includes(name), 'created on the server');
  const child = (await nylas.folders.create({ identifier: grant.id, requestBody: { name: 'child', parentId: created.id } })).data;
  assert.equal(child.name, `${name}/child`);
  assert.equal(child.parentId, created.id);

  const renamed = (await nylas.folders.update({ identifier: grant.id, folderId: created.id, requestBody: { name: `${name}-renamed` } })).data;
  assert.equal(renamed.id, created.id, 'a rename keeps the id');
  assert.equal(renamed.name, `${name}-renamed`);
  const onServer = await im.list();
  assert.ok(onServer.includes(`${name}-renamed/child`) && !onServer.includes(name), `renamed on the server: ${JSON.stringify(onServer)}`);
  assert.equal((await nylas.folders.find({ identifier: grant.id, folderId: child.id })).data.name, `${name}-renamed/child`, 'the child follows');

  await expectApiError(nylas.folders.update({ identifier: grant.id, folderId: initial.INBOX.id, requestBody: { name: 'Old mail' } }),
    { status: 400, type: 'invalid_request_error', message: /system folder/ }, 'rename INBOX');
  await expectApiError(nylas.folders.destroy({ identifier: grant.id, folderId: initial['Sent Messages'].id }),
    { status: 400, type: 'invalid_request_error', message: /system folder/ }, 'delete Sent');

  await nylas.folders.destroy({ identifier: grant.id, folderId: created.id });
  assert.ok(!(await im.list()).some((n) => n.startsWith(name)), 'deleted on the server');
  await expectApiError(nylas.folders.find({ identifier: grant.id, folderId: child.id }), { status: 404, type: 'not_found_error' }, 'child after delete');
});
