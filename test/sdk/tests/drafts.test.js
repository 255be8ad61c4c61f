// nylas.drafts.create/find/list/update/destroy/send on carol's mailbox
// (imap grant): a draft is a message in Drafts with \Draft. Every step is
// checked on the IMAP server as well as in the API's answer: Drafts holds
// exactly one copy after create and update (the new version, attachments
// kept) and none after send or destroy; a sent draft reaches the
// recipients once and Sent Messages once.
//
// Drafts is polled every second here (ORCHARD_SYNC_POLL_INTERVAL=1s) so
// that a draft another mail client saves shows up quickly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startOrchard, stopAndCheck, client, expectApiError, connectMailbox, runTag, imapSession, imapFetch, parseMime, mimeLeaves,
  buildMessage, waitFor, removeTagged, MAIL_ENV,
} from '../harness.js';

const CAROL = 'carol@example.test'; // the grant
const BOB = 'bob@example.test';
const ALICE = 'alice@example.test';
const TAG = runTag('dft');
const SENT = 'Sent Messages';

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bytes = (n, label) => Buffer.concat([Buffer.from(`${label}\r\n.\r\n\0`, 'latin1'), crypto.randomBytes(n)]);

let srv;
let nylas;
let grant;
let folders; // name → folder

const drafts = () => nylas.drafts;
const create = (requestBody) => drafts().create({ identifier: grant.id, requestBody });
const update = (draftId, requestBody) => drafts().update({ identifier: grant.id, draftId, requestBody });
const find = (draftId) => drafts().find({ identifier: grant.id, draftId });
const listIds = async (subject) => (await drafts().list({ identifier: grant.id, queryParams: { subject, limit: 50 } })).data.map((d) => d.id).sort();
const sendDraft = (draftId) => drafts().send({ identifier: grant.id, draftId });

/** UIDs of user's folder whose Subject contains text. */
async function uids(user, folder, text) {
  const im = await imapSession(user);
  try {
    return await im.search(folder, text);
  } finally {
    await im.close();
  }
}

/** Waits until user's folder holds n messages with text in the Subject, then reads them. */
async function arrived(user, folder, text, n = 1) {
  let got = [];
  await waitFor(async () => (got = await uids(user, folder, text)).length >= n,
    { timeout: 20000, interval: 250, what: () => `${n} message(s) "${text}" in ${user}'s ${folder}, found ${got.length}` });
  return imapFetch(user, folder, text);
}

/** The only copy in carol's Drafts whose Subject contains text, parsed, with its flags. */
async function onlyDraft(text) {
  const got = await imapFetch(CAROL, 'Drafts', text);
  assert.equal(got.length, 1, `exactly one copy of "${text}" in Drafts, found ${got.length}`);
  return { flags: got[0].flags, msg: parseMime(got[0].raw), raw: got[0].raw };
}

const fileOf = (msg, filename) => {
  const leaf = mimeLeaves(msg).find((l) => l.filename === filename);
  assert.ok(leaf, `${filename} in ${JSON.stringify(mimeLeaves(msg).map((l) => [l.type, l.filename]))}`);
  return leaf.body;
};
const htmlOf = (msg) => mimeLeaves(msg).find((l) => l.type === 'text/html')?.body.toString('utf8') ?? '';
const attachmentNames = (msg) => mimeLeaves(msg).filter((l) => l.filename).map((l) => l.filename).sort();

before(async () => {
  srv = await startOrchard({ name: 'drafts', env: { ...MAIL_ENV, ORCHARD_SYNC_POLL_INTERVAL: '1s' } });
  nylas = client(srv);
  grant = await connectMailbox(srv, nylas, CAROL);
  folders = Object.fromEntries((await nylas.folders.list({ identifier: grant.id })).data.map((f) => [f.name, f]));
  assert.ok(folders.Drafts && folders[SENT], `Drafts and ${SENT} in ${Object.keys(folders)}`);
});

after(async () => {
  if (srv) {
    await stopAndCheck(srv);
    if (!process.env.ORCHARD_SDK_KEEP) srv.cleanup();
  }
  await removeTagged(CAROL, TAG, ['INBOX', SENT, 'Drafts', 'Deleted Messages']);
  await removeTagged(BOB, TAG);
  await removeTagged(ALICE, TAG);
});

test('create → find → list → update (id kept, attachment kept) → send: Drafts holds one copy, then none; bob gets the last version once', async () => {
  const plan = bytes(20 * 1024, 'plan');
  const key = `${TAG} plan`;

  // create
  const created = (await create({
    to: [{ name: 'Bob Tester', email: BOB }], bcc: [{ email: ALICE }], subject: `${key} v1`, body: '<p>first draft</p>', starred: true,
    attachments: [{ filename: 'plan.bin', contentType: 'application/octet-stream', content: plan, size: plan.length }],
  })).data;
  const id = created.id;
  assert.equal(created.object, 'draft');
  assert.equal(created.grantId, grant.id);
  assert.match(id, /\S/);
  assert.equal(created.subject, `${key} v1`);
  assert.deepEqual(created.folders, [folders.Drafts.id]);
  assert.equal(created.starred, true);
  assert.deepEqual(created.to, [{ name: 'Bob Tester', email: BOB }]);
  assert.deepEqual(created.bcc.map((p) => p.email), [ALICE]);
  assert.deepEqual(created.attachments.map((a) => [a.filename, a.size]), [['plan.bin', plan.length]]);

  let d = await onlyDraft(key);
  for (const f of ['\\Draft', '\\Seen', '\\Flagged']) assert.ok(d.flags.includes(f), `Drafts copy flags ${d.flags} include ${f}`);
  assert.equal(d.msg.header('subject'), `${key} v1`);
  assert.match(d.msg.header('bcc') ?? '', /alice@example\.test/, 'a draft keeps its Bcc');
  assert.match(htmlOf(d.msg), /first draft/);
  assert.equal(sha(fileOf(d.msg, 'plan.bin')), sha(plan));

  // find and list
  const found = (await find(id)).data;
  assert.equal(found.id, id);
  assert.equal(found.object, 'draft');
  assert.equal(found.subject, `${key} v1`);
  assert.deepEqual(found.folders, [folders.Drafts.id]);
  const listed = await drafts().list({ identifier: grant.id, queryParams: { subject: key } });
  assert.deepEqual(listed.data.map((x) => x.id), [id]);
  assert.deepEqual(listed.data.map((x) => x.object), ['draft']);

  // update: only subject and body; recipients, bcc, starred and the attachment stay
  const updated = (await update(id, { subject: `${key} v2`, body: '<p>second draft</p>' })).data;
  assert.equal(updated.id, id, 'an update keeps the id');
  assert.equal(updated.object, 'draft');
  assert.equal(updated.subject, `${key} v2`);
  assert.deepEqual(updated.to, [{ name: 'Bob Tester', email: BOB }], 'to kept');
  assert.deepEqual(updated.bcc.map((p) => p.email), [ALICE], 'bcc kept');
  assert.equal(updated.starred, true, 'starred kept');
  assert.deepEqual(updated.attachments.map((a) => [a.filename, a.size]), [['plan.bin', plan.length]], 'attachment kept');
  assert.deepEqual(updated.folders, [folders.Drafts.id]);

  d = await onlyDraft(key);
  assert.equal(d.msg.header('subject'), `${key} v2`, 'the server has the new version, and only it');
  assert.match(htmlOf(d.msg), /second draft/);
  assert.doesNotMatch(htmlOf(d.msg), /first draft/);
  assert.equal(sha(fileOf(d.msg, 'plan.bin')), sha(plan), 'attachment bytes kept on the server');
  for (const f of ['\\Draft', '\\Flagged']) assert.ok(d.flags.includes(f), `new version's flags ${d.flags} include ${f}`);
  const draftMessageId = d.msg.header('message-id');
  assert.equal((await find(id)).data.subject, `${key} v2`);
  assert.deepEqual(await listIds(key), [id], 'still one draft');
  assert.deepEqual(await uids(BOB, 'INBOX', key), [], 'a draft is not sent');

  // send
  const res = await sendDraft(id);
  const sent = res.data;
  assert.equal(sent.object, 'message', 'a sent draft is a message');
  assert.equal(sent.subject, `${key} v2`);
  assert.ok(sent.folders.includes(folders[SENT].id), `folders ${JSON.stringify(sent.folders)} has ${SENT}`);
  assert.deepEqual(sent.attachments.map((a) => [a.filename, a.size]), [['plan.bin', plan.length]]);

  assert.deepEqual(await uids(CAROL, 'Drafts', key), [], 'gone from Drafts');
  const copies = await imapFetch(CAROL, SENT, key);
  assert.equal(copies.length, 1, `one copy in ${SENT}`);
  const copy = parseMime(copies[0].raw);
  assert.equal(copy.header('subject'), `${key} v2`);
  assert.ok(!copies[0].flags.includes('\\Draft'), `the Sent copy is no draft: ${copies[0].flags}`);
  assert.equal(sha(fileOf(copy, 'plan.bin')), sha(plan));

  const [bob, ...more] = await arrived(BOB, 'INBOX', key);
  assert.equal(more.length, 0);
  const got = parseMime(bob.raw);
  assert.equal(got.header('subject'), `${key} v2`, 'bob gets the last version');
  assert.match(htmlOf(got), /second draft/);
  assert.equal(sha(fileOf(got, 'plan.bin')), sha(plan), 'attachment bytes intact');
  assert.equal(got.headers.bcc, undefined, 'no Bcc header travels');
  assert.equal(got.header('message-id'), draftMessageId, 'the message sent is the draft (same Message-ID)');
  await arrived(ALICE, 'INBOX', key);
  await sleep(1000);
  assert.equal((await uids(BOB, 'INBOX', key)).length, 1, 'delivered once');

  await expectApiError(find(id), { status: 404, type: 'not_found_error' }, 'the sent draft');
  assert.deepEqual(await listIds(key), [], 'no longer listed as a draft');
  await expectApiError(sendDraft(id), { status: 404, type: 'not_found_error' }, 'sending it again');
  const asMessage = (await nylas.messages.find({ identifier: grant.id, messageId: sent.id })).data;
  assert.deepEqual(asMessage.folders, [folders[SENT].id], 'the message is in Sent now');
});

test('update with attachments replaces them; attachments: [] removes them', async () => {
  const key = `${TAG} swap`;
  const a = bytes(4096, 'a');
  const b = bytes(6000, 'b');
  const { id } = (await create({ to: [{ email: BOB }], subject: key, body: 'x',
    attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', content: a, size: a.length }] })).data;
  assert.deepEqual(attachmentNames((await onlyDraft(key)).msg), ['a.bin']);

  const swapped = (await update(id, { attachments: [{ filename: 'b.bin', contentType: 'application/octet-stream', content: b, size: b.length }] })).data;
  assert.equal(swapped.id, id);
  assert.deepEqual(swapped.attachments.map((x) => x.filename), ['b.bin']);
  let d = await onlyDraft(key);
  assert.deepEqual(attachmentNames(d.msg), ['b.bin']);
  assert.equal(sha(fileOf(d.msg, 'b.bin')), sha(b));
  assert.equal(d.msg.header('subject'), key, 'subject kept');

  const none = (await update(id, { attachments: [] })).data;
  assert.deepEqual(none.attachments, []);
  d = await onlyDraft(key);
  assert.deepEqual(attachmentNames(d.msg), []);

  await drafts().destroy({ identifier: grant.id, draftId: id });
  assert.deepEqual(await uids(CAROL, 'Drafts', key), []);
});

test('destroy removes the draft from Drafts for good (not to Deleted Messages); find and send → 404; nothing is sent', async () => {
  const key = `${TAG} scrap`;
  const { id } = (await create({ to: [{ email: BOB }], subject: key, body: '<p>never mind</p>' })).data;
  await onlyDraft(key);

  const res = await drafts().destroy({ identifier: grant.id, draftId: id });
  assert.match(res.requestId, /\S/);
  assert.deepEqual(await uids(CAROL, 'Drafts', key), [], 'gone from Drafts');
  assert.deepEqual(await uids(CAROL, 'Deleted Messages', key), [], 'not moved to the Trash');
  await expectApiError(find(id), { status: 404, type: 'not_found_error', message: new RegExp(id) }, 'find after destroy');
  await expectApiError(sendDraft(id), { status: 404, type: 'not_found_error' }, 'send after destroy');
  await expectApiError(drafts().destroy({ identifier: grant.id, draftId: id }), { status: 404, type: 'not_found_error' }, 'destroy twice');
  assert.deepEqual(await listIds(key), []);
  await sleep(1000);
  assert.deepEqual(await uids(BOB, 'INBOX', key), [], 'nothing reached bob');
  assert.deepEqual(await uids(CAROL, SENT, key), []);
});

test('a draft without recipients is saved; sending it → 400 and it stays; after adding a recipient it sends', async () => {
  const key = `${TAG} norcpt`;
  const { id } = (await create({ subject: key, body: '<p>to whom?</p>' })).data;
  await onlyDraft(key);
  await expectApiError(sendDraft(id), { status: 400, type: 'invalid_request_error', message: /at least one recipient/ }, 'send without recipients');
  assert.equal((await onlyDraft(key)).msg.header('subject'), key, 'still in Drafts, unchanged');
  assert.deepEqual(await listIds(key), [id]);

  assert.equal((await update(id, { to: [{ email: BOB }] })).data.id, id);
  const sent = (await sendDraft(id)).data;
  assert.equal(sent.subject, key);
  const [bob] = await arrived(BOB, 'INBOX', key);
  assert.match(htmlOf(parseMime(bob.raw)), /to whom\?/);
  assert.deepEqual(await uids(CAROL, 'Drafts', key), []);
  assert.equal((await uids(CAROL, SENT, key)).length, 1);
});

test('bad input on create and update → 400 naming the field; Drafts unchanged', async () => {
  const key = `${TAG} badin`;
  const cases = [
    ['malformed address', { to: [{ email: 'bob@' }] }, [/to\[0\]\.email/, /not a valid email address/]],
    ['CR/LF in subject', { subject: `${key} x\r\nBcc: ${ALICE}` }, [/subject: must not contain line breaks/]],
    ['protected custom header', { customHeaders: [{ name: 'Message-ID', value: `<forged.${TAG}@sdk.test>` }] }, [/custom_headers\[0\]\.name/, /"Message-ID" is set by Orchard/]],
    ['bad base64 attachment', { attachments: [{ filename: 'a.bin', contentType: 'application/octet-stream', content: '%%% not base64 %%%', size: 10 }] },
      [/attachments\[0\]\.content is not valid base64/]],
  ];
  for (const [label, body, message] of cases) {
    await expectApiError(create({ subject: `${key} create`, ...body }), { status: 400, type: 'invalid_request_error', message }, `create: ${label}`);
  }
  assert.deepEqual(await uids(CAROL, 'Drafts', key), [], 'no draft created by bad requests');

  const { id } = (await create({ to: [{ email: BOB }], subject: `${key} good`, body: '<p>keep me</p>' })).data;
  const before = await onlyDraft(key);
  for (const [label, body, message] of cases) {
    await expectApiError(update(id, body), { status: 400, type: 'invalid_request_error', message }, `update: ${label}`);
  }
  const afterBad = await onlyDraft(key);
  assert.ok(afterBad.raw.equals(before.raw), 'the draft on the server is untouched');
  assert.equal((await find(id)).data.subject, `${key} good`);
  await expectApiError(find(`nosuchdraft${TAG}`), { status: 404, type: 'not_found_error' }, 'unknown draft id');
  await drafts().destroy({ identifier: grant.id, draftId: id });
});

test('a draft another mail client saved in Drafts is listed, can be updated and sent', async () => {
  const key = `${TAG} foreign`;
  const memo = bytes(3000, 'memo');
  const im = await imapSession(CAROL);
  try {
    await im.append('Drafts', buildMessage({
      from: { name: 'Carol', email: CAROL }, to: { name: 'Bob', email: BOB }, subject: key, messageId: `<foreign.${TAG}@sdk.test>`,
      text: 'written elsewhere', html: '<p>written elsewhere</p>',
      attachments: [{ contentType: 'application/octet-stream', disposition: 'attachment; filename="memo.bin"', data: memo }],
    }), { flags: ['\\Draft', '\\Seen'] });
  } finally {
    await im.close();
  }
  let ids = [];
  await waitFor(async () => (ids = await listIds(key)).length === 1, { timeout: 15000, what: () => `the foreign draft listed (${ids})` });
  const [id] = ids;
  const d = (await find(id)).data;
  assert.equal(d.object, 'draft');
  assert.equal(d.subject, key);
  assert.deepEqual(d.attachments.map((a) => a.filename), ['memo.bin']);

  assert.equal((await update(id, { cc: [{ email: ALICE }] })).data.id, id, 'an update keeps the id');
  const onServer = await onlyDraft(key);
  assert.equal(onServer.msg.header('message-id'), `<foreign.${TAG}@sdk.test>`, 'the Message-ID stays');
  assert.match(onServer.msg.header('cc') ?? '', /alice@example\.test/);
  assert.equal(sha(fileOf(onServer.msg, 'memo.bin')), sha(memo), 'the other client\'s attachment is kept');

  await sendDraft(id);
  const [bob] = await arrived(BOB, 'INBOX', key);
  const got = parseMime(bob.raw);
  assert.equal(got.header('message-id'), `<foreign.${TAG}@sdk.test>`);
  assert.match(htmlOf(got), /written elsewhere/);
  assert.equal(sha(fileOf(got, 'memo.bin')), sha(memo));
  await arrived(ALICE, 'INBOX', key);
  assert.deepEqual(await uids(CAROL, 'Drafts', key), []);
  assert.equal((await uids(CAROL, SENT, key)).length, 1);
});

test('a 3.3 MiB draft (the SDK\'s multipart form) with an inline image: update keeps both; drafts.send with Idempotency-Key sends once', async () => {
  const key = `${TAG} bigdraft`;
  const big = bytes(3.3 * 1024 * 1024, 'big');
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
  const cid = `pic.${TAG}@sdk.test`;
  const d = (await create({
    to: [{ email: BOB }], subject: key, body: `<p>v1 <img src="cid:${cid}"></p>`,
    attachments: [
      { filename: 'big.bin', contentType: 'application/octet-stream', content: big, size: big.length },
      { filename: 'pic.png', contentType: 'image/png', content: png, size: png.length, contentId: cid, isInline: true },
    ],
  })).data;
  assert.equal(d.object, 'draft');
  const att = Object.fromEntries(d.attachments.map((a) => [a.filename, a]));
  assert.equal(att['big.bin']?.size, big.length, JSON.stringify(d.attachments));
  assert.equal(att['pic.png']?.contentId, cid);

  assert.equal((await update(d.id, { body: `<p>v2 <img src="cid:${cid}"></p>` })).data.id, d.id);
  const { msg } = await onlyDraft(key);
  assert.match(htmlOf(msg), /v2/);
  assert.equal(sha(fileOf(msg, 'big.bin')), sha(big), '3.3 MiB kept through the update');
  const pic = mimeLeaves(msg).find((l) => l.cid === cid);
  assert.ok(pic?.body.equals(png), `inline image with Content-ID <${cid}> kept`);

  const overrides = { headers: { 'Idempotency-Key': `draft-${TAG}` } };
  const first = await drafts().send({ identifier: grant.id, draftId: d.id, overrides });
  const again = await drafts().send({ identifier: grant.id, draftId: d.id, overrides });
  assert.equal(again.rawHeaders['idempotent-replayed'], 'true', 'the retry is replayed, not a 404 for the draft that is gone');
  assert.deepEqual(again.data, first.data);

  const [bob, ...more] = await arrived(BOB, 'INBOX', key);
  assert.equal(more.length, 0);
  const got = parseMime(bob.raw);
  assert.equal(sha(fileOf(got, 'big.bin')), sha(big), 'bytes intact at bob');
  assert.ok(mimeLeaves(got).find((l) => l.cid === cid)?.body.equals(png), 'inline image at bob');
  await sleep(1000);
  assert.equal((await uids(BOB, 'INBOX', key)).length, 1, 'sent once');
  assert.deepEqual(await uids(CAROL, 'Drafts', key), []);
  assert.equal((await uids(CAROL, SENT, key)).length, 1);
});
