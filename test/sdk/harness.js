// Test harness: builds (or takes ORCHARD_BIN) and runs a real `orchard serve`
// on loopback against the test env's Dovecot/Postfix, creates applications
// with the CLI, and hands out Nylas SDK clients pointed at it.
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import Nylas, { NylasApiError } from 'nylas';

export { NylasApiError };

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

// ---------------------------------------------------------------------------
// Test environment

const REQUIRED_ENV = ['ORCHARD_TEST_IMAP_ADDR', 'ORCHARD_TEST_SMTP_ADDR', 'ORCHARD_TEST_CA_FILE', 'ORCHARD_TEST_USERS'];

/** Returns the loopback test env, or throws a message that says how to get it. */
export function testEnv() {
  const missing = REQUIRED_ENV.filter((k) => !process.env[k]);
  if (missing.length > 0) {
    throw new Error(
      `SDK tests need the loopback mail test env; missing ${missing.join(', ')}.\n` +
        `Start it with:  scripts/testenv/install.sh && scripts/testenv/up.sh\n` +
        `then load it:   . /tmp/orchard-testenv/env   (see scripts/testenv/README.md)`,
    );
  }
  const users = {};
  for (const pair of process.env.ORCHARD_TEST_USERS.trim().split(/\s+/)) {
    const i = pair.indexOf(':');
    if (i <= 0) throw new Error(`ORCHARD_TEST_USERS entry ${JSON.stringify(pair.split(':')[0])} is not email:password`);
    users[pair.slice(0, i)] = pair.slice(i + 1);
  }
  for (const u of ['alice@example.test', 'bob@example.test', 'carol@example.test']) {
    if (!users[u]) throw new Error(`ORCHARD_TEST_USERS has no ${u}`);
  }
  if (!fs.existsSync(process.env.ORCHARD_TEST_CA_FILE)) {
    throw new Error(`ORCHARD_TEST_CA_FILE=${process.env.ORCHARD_TEST_CA_FILE} does not exist: restart the test env (scripts/testenv/up.sh)`);
  }
  const split = (addr) => {
    const i = addr.lastIndexOf(':');
    return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
  };
  return {
    imapAddr: process.env.ORCHARD_TEST_IMAP_ADDR,
    smtpAddr: process.env.ORCHARD_TEST_SMTP_ADDR,
    imap: split(process.env.ORCHARD_TEST_IMAP_ADDR),
    smtp: split(process.env.ORCHARD_TEST_SMTP_ADDR),
    caFile: process.env.ORCHARD_TEST_CA_FILE,
    users,
  };
}

/**
 * Wrong passwords the tests send. They are listed here so that the log
 * checks look for them as well as for the real ones.
 */
export const BAD_PASSWORDS = Object.freeze({
  icloud: 'wrng-pass-word-zzzz',
  imap: 'Not-The-Imap-Pass-9731',
  timeout: 'never-answered-pass-4410',
  refused: 'refused-port-pass-5521',
  untrusted: 'untrusted-ca-pass-6632',
  other: 'misc-secret-pass-7743',
});

/** Every password a test may send: good ones from the env and BAD_PASSWORDS. */
export function allPasswords() {
  return [...Object.values(testEnv().users), ...Object.values(BAD_PASSWORDS)];
}

// ---------------------------------------------------------------------------
// Binary

let builtBin;

/** ORCHARD_BIN, or `go build` of ./cmd/orchard into a temp dir (once per process). */
export function orchardBin() {
  if (process.env.ORCHARD_BIN) {
    if (!fs.existsSync(process.env.ORCHARD_BIN)) throw new Error(`ORCHARD_BIN=${process.env.ORCHARD_BIN} does not exist`);
    return process.env.ORCHARD_BIN;
  }
  if (builtBin) return builtBin;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchard-sdk-bin-'));
  const out = path.join(dir, 'orchard');
  try {
    execFileSync('go', ['build', '-o', out, './cmd/orchard'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`go build ./cmd/orchard failed:\n${e.stderr?.toString() ?? e.message}`);
  }
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  builtBin = out;
  return out;
}

// ---------------------------------------------------------------------------
// Ports and processes

/** A port that nothing listens on right now (bound then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and never writes a
 * byte: a mail server that hangs. close() destroys open sockets too.
 */
export async function startSilentServer() {
  const sockets = new Set();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: srv.address().port,
    connections: () => sockets.size,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Base environment for every orchard command of one server. */
function orchardEnv({ dataDir, listen, ca, extra }) {
  const env = testEnv();
  const e = { PATH: process.env.PATH, HOME: process.env.HOME ?? os.tmpdir(), TMPDIR: os.tmpdir() };
  Object.assign(e, {
    ORCHARD_DATA_DIR: dataDir,
    ORCHARD_LISTEN: listen,
    ORCHARD_ICLOUD_IMAP_ADDR: env.imapAddr,
    ORCHARD_ICLOUD_SMTP_ADDR: env.smtpAddr,
    ORCHARD_PROVIDER_TIMEOUT: '3s',
    ORCHARD_LOG_FORMAT: 'text',
  });
  if (ca) e.ORCHARD_CA_FILE = env.caFile;
  return { ...e, ...extra };
}

/** Runs `orchard app create --name NAME --json` and returns {appId, apiKey}. */
export function createApp(server, name) {
  let out;
  try {
    out = execFileSync(orchardBin(), ['app', 'create', '--name', name, '--json'], {
      env: server.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15000,
    }).toString();
  } catch (e) {
    throw new Error(`orchard app create --name ${name} failed: ${e.stderr?.toString() ?? e.message}`);
  }
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 1, `app create --json must print one line, got: ${out}`);
  const j = JSON.parse(lines[0]);
  assert.match(j.application_id ?? '', /\S/, 'app create --json: application_id');
  assert.match(j.api_key ?? '', /\S/, 'app create --json: api_key');
  return { appId: j.application_id, apiKey: j.api_key };
}

/**
 * Starts orchard serve with a fresh data dir.
 *   apps: names of applications to create with the CLI before serve
 *         (the first one is the default {apiKey, appId}); [] = let serve
 *         bootstrap its "default" app on the empty database.
 *   ca:   pass ORCHARD_CA_FILE (default true).
 *   env:  extra/overriding ORCHARD_* variables.
 * Returns {url, apiKey, appId, apps, logFile, stdoutFile, dataDir, env, stop()}.
 * stop() sends SIGTERM and resolves {code, signal, ms}; it is idempotent.
 */
export async function startOrchard({ apps = ['sdk-test'], ca = true, env = {}, name = 'orchard' } = {}) {
  testEnv();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `orchard-sdk-${name}-`));
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const server = { url: `http://${listen}`, dataDir, env: orchardEnv({ dataDir, listen, ca, extra: env }) };
  server.apps = apps.map((n) => ({ name: n, ...createApp(server, n) }));
  if (server.apps.length > 0) Object.assign(server, { apiKey: server.apps[0].apiKey, appId: server.apps[0].appId });

  return launch(server);
}

/**
 * Starts serve again on prev's data dir, address and environment (after
 * prev stopped). Same apps, fresh log files.
 */
export async function startOrchardOn(prev) {
  const server = { url: prev.url, dataDir: prev.dataDir, env: prev.env, apps: prev.apps, apiKey: prev.apiKey, appId: prev.appId };
  return launch(server);
}

let launches = 0;

async function launch(server) {
  const { dataDir } = server;
  const bin = orchardBin();
  const n = ++launches;
  server.logFile = path.join(dataDir, `orchard.${n}.stderr.log`);
  server.stdoutFile = path.join(dataDir, `orchard.${n}.stdout.log`);
  const errFd = fs.openSync(server.logFile, 'a');
  const outFd = fs.openSync(server.stdoutFile, 'a');
  const proc = spawn(bin, ['serve'], { env: server.env, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(errFd);
  fs.closeSync(outFd);
  running.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    running.delete(proc);
    resolve({ code, signal });
  }));
  let exitInfo = null;
  exited.then((x) => (exitInfo = x));
  server.proc = proc;
  server.log = () => fs.readFileSync(server.logFile, 'utf8');
  server.stdout = () => fs.readFileSync(server.stdoutFile, 'utf8');

  // Readiness: GET /healthz answers 200.
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exitInfo) {
      throw new Error(`orchard serve exited early (${JSON.stringify(exitInfo)}); stderr:\n${server.log()}`);
    }
    try {
      const r = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`orchard serve not ready on ${server.url} within 15 s; stderr:\n${server.log()}`);
    }
    await sleep(50);
  }

  let stopping;
  server.stop = () => {
    if (!stopping) {
      stopping = (async () => {
        const t0 = Date.now();
        if (!exitInfo) proc.kill('SIGTERM');
        let timer;
        const res = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r(null), 10000)))]);
        clearTimeout(timer);
        if (!res) {
          proc.kill('SIGKILL');
          await exited;
          return { code: null, signal: 'SIGKILL(after 10 s timeout)', ms: Date.now() - t0 };
        }
        return { ...res, ms: Date.now() - t0 };
      })();
    }
    return stopping;
  };
  server.cleanup = () => fs.rmSync(dataDir, { recursive: true, force: true });
  return server;
}

// ---------------------------------------------------------------------------
// SDK helpers

/** A Nylas client for server (default key: its first app's key). */
export function client(server, apiKey = server.apiKey) {
  return new Nylas({ apiKey, apiUri: server.url, timeout: 30 });
}

/**
 * Awaits promise, which must reject with NylasApiError of the given status
 * and type; message (RegExp or array of RegExp) must match. Returns the error.
 */
export async function expectApiError(promise, { status, type, message, not = [] }, label = '') {
  let err;
  try {
    const res = await promise;
    assert.fail(`${label}: expected NylasApiError ${status} ${type}, got success: ${JSON.stringify(res).slice(0, 500)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  const where = label ? `${label}: ` : '';
  assert.ok(err instanceof NylasApiError, `${where}expected NylasApiError, got ${err?.constructor?.name}: ${err?.message}`);
  const desc = `${where}[${err.statusCode} ${err.type}] ${err.message}`;
  assert.equal(err.statusCode, status, `${desc}: statusCode`);
  if (type !== undefined) assert.equal(err.type, type, `${desc}: type`);
  assert.equal(typeof err.requestId, 'string', `${desc}: requestId must come from X-Request-Id`);
  assert.match(err.requestId, /^[0-9a-f-]{8,}$/i, `${desc}: requestId`);
  assert.ok(typeof err.message === 'string' && err.message.length > 10, `${desc}: message must be helpful`);
  for (const re of [message ?? []].flat()) assert.match(err.message, re, `${desc}: message`);
  for (const s of not) assert.ok(!err.message.includes(s), `${desc}: message must not contain ${JSON.stringify(s)}`);
  return err;
}

/** Asserts that none of the secrets appears in text (reports which did). */
export function assertNoSecrets(text, secrets, what) {
  const leaked = secrets.filter((s) => s && text.includes(s));
  assert.deepEqual(leaked, [], `${what} contains secret(s): ${leaked.map((s) => JSON.stringify(s)).join(', ')}`);
}

/**
 * The end-of-file checks for one server: SIGTERM → exit code 0 within a few
 * seconds, and no password anywhere in its log output.
 */
export async function stopAndCheck(server, secrets = allPasswords()) {
  const res = await server.stop();
  assert.equal(res.signal, null, `orchard serve was killed by ${res.signal}; stderr:\n${server.log().slice(-4000)}`);
  assert.equal(res.code, 0, `orchard serve exit code after SIGTERM; stderr:\n${server.log().slice(-4000)}`);
  assert.ok(res.ms < 5000, `orchard serve took ${res.ms} ms to stop after SIGTERM`);
  assertNoSecrets(server.log(), secrets, `server log ${server.logFile}`);
  assertNoSecrets(server.stdout(), secrets, `server stdout ${server.stdoutFile}`);
  return res;
}

// ---------------------------------------------------------------------------
// Mail: putting messages into a test mailbox and waiting for the sync.
// Tests use carol@example.test (other suites use alice and bob); another
// run may have left mail there, so every message carries a run tag in its
// Subject and Message-ID and tests always filter by it.

/** A tag unique to this run: lower-case letters and digits, safe in headers and IMAP SEARCH. */
export function runTag(prefix) {
  return `${prefix}${Date.now().toString(36)}${crypto.randomBytes(4).toString('hex')}`;
}

const CRLF = '\r\n';

/** RFC 2047 B-encoding of a header text when it is not plain ASCII. */
export function encodeWord(s) {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

function addressList(list) {
  return [list ?? []].flat().map((a) => (typeof a === 'string' ? a : a.name ? `${encodeWord(a.name)} <${a.email}>` : a.email)).join(', ');
}

/** Base64 wrapped at 76 columns, CRLF line ends. */
export function base64Lines(buf) {
  return (buf.toString('base64').match(/.{1,76}/g) ?? []).join(CRLF);
}

/**
 * Quoted-printable of arbitrary bytes: everything but printable ASCII
 * (and '=') as =XX, so CR and LF too; soft breaks keep lines ≤ 76.
 */
export function quotedPrintable(buf) {
  const lines = [];
  let line = '';
  for (const b of buf) {
    const t = b >= 33 && b <= 126 && b !== 61 ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (line.length + t.length > 75) {
      lines.push(`${line}=`);
      line = '';
    }
    line += t;
  }
  lines.push(line);
  return lines.join(CRLF);
}

function rfc5322Date(d) {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

let boundaries = 0;
const boundary = () => `=_orchard_sdk_${process.pid}_${++boundaries}_${crypto.randomBytes(3).toString('hex')}`;

function multipart(subtype, parts, extra = '') {
  const b = boundary();
  const head = `Content-Type: multipart/${subtype}; boundary="${b}"${extra}`;
  const body = parts.map((p) => `--${b}${CRLF}${p}${CRLF}`).join('') + `--${b}--`;
  return `${head}${CRLF}${CRLF}This is a multi-part message in MIME format.${CRLF}${CRLF}${body}`;
}

/**
 * Builds an RFC 5322 message (CRLF line ends) as a string.
 *   from, to, cc: 'a@x' or {name, email} or arrays of those.
 *   text / html: bodies (both → multipart/alternative).
 *   attachments: [{contentType, disposition, data: Buffer, encoding: 'base64'|'quoted-printable'|'7bit', cid}]
 *     ('7bit' puts data in as it is: CRLF text, e.g. a message/rfc822 part)
 *     where contentType and disposition are full header values (so tests
 *     control RFC 2231/2047 parameter forms); parts with a cid go with the
 *     html into multipart/related.
 *   headers: extra header lines {Name: value}.
 */
export function buildMessage({ from, to, cc, subject, messageId, date = new Date(), inReplyTo, references, text, html, attachments = [], headers = {} }) {
  const h = [`From: ${addressList(from)}`];
  if (to) h.push(`To: ${addressList(to)}`);
  if (cc) h.push(`Cc: ${addressList(cc)}`);
  h.push(`Subject: ${encodeWord(subject)}`, `Date: ${rfc5322Date(date)}`, `Message-ID: ${messageId}`);
  if (inReplyTo) h.push(`In-Reply-To: ${inReplyTo}`);
  if (references) h.push(`References: ${[references].flat().join(' ')}`);
  for (const [k, v] of Object.entries(headers)) h.push(`${k}: ${v}`);
  h.push('MIME-Version: 1.0');

  const textPart = (type, s) =>
    `Content-Type: text/${type}; charset=UTF-8${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${base64Lines(Buffer.from(s, 'utf8'))}`;
  const attPart = (a) => {
    const lines = [`Content-Type: ${a.contentType}`];
    if (a.disposition) lines.push(`Content-Disposition: ${a.disposition}`);
    if (a.cid) lines.push(`Content-ID: <${a.cid}>`);
    const enc = a.encoding ?? 'base64';
    lines.push(`Content-Transfer-Encoding: ${enc}`);
    const body = enc === 'base64' ? base64Lines(a.data) : enc === 'quoted-printable' ? quotedPrintable(a.data) : a.data.toString('utf8');
    return `${lines.join(CRLF)}${CRLF}${CRLF}${body}`;
  };

  let body;
  if (text !== undefined && html !== undefined) body = multipart('alternative', [textPart('plain', text), textPart('html', html)]);
  else if (html !== undefined) body = textPart('html', html);
  else body = textPart('plain', text ?? '');
  const inline = attachments.filter((a) => a.cid);
  const attached = attachments.filter((a) => !a.cid);
  if (inline.length > 0) body = multipart('related', [body, ...inline.map(attPart)], '; type="multipart/alternative"');
  if (attached.length > 0) body = multipart('mixed', [body, ...attached.map(attPart)]);
  return `${h.join(CRLF)}${CRLF}${body}${CRLF}`;
}

/** Reads CRLF-terminated lines from a socket; next() resolves with one line. */
function lineReader(sock) {
  let buf = '';
  const lines = [];
  const waiters = [];
  let failure = null;
  const pump = () => {
    while (waiters.length > 0 && (lines.length > 0 || failure)) {
      const w = waiters.shift();
      if (lines.length > 0) w.resolve(lines.shift());
      else w.reject(failure);
    }
  };
  sock.setEncoding('latin1');
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    pump();
  });
  const fail = (e) => {
    failure ??= e;
    pump();
  };
  sock.on('error', fail);
  sock.on('close', () => fail(new Error('connection closed')));
  return { next: () => new Promise((resolve, reject) => (waiters.push({ resolve, reject }), pump())) };
}

function withTimeout(promise, ms, what, sock) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`${what}: no answer within ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Hands data (a whole RFC 5322 message) to Postfix on
 * ORCHARD_TEST_SMTP_INJECT_ADDR (plain SMTP, no auth) for delivery to rcpts.
 * Checks every reply code; dot-stuffs the data.
 */
export async function smtpInject({ from = 'sdk-tests@example.org', rcpts = ['carol@example.test'], data }) {
  const addr = process.env.ORCHARD_TEST_SMTP_INJECT_ADDR;
  if (!addr) throw new Error('ORCHARD_TEST_SMTP_INJECT_ADDR is not set: load the test env (. /tmp/orchard-testenv/env)');
  const i = addr.lastIndexOf(':');
  const sock = net.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
  const rd = lineReader(sock);
  const reply = async (want, what) => {
    let line;
    const all = [];
    do {
      line = await rd.next();
      all.push(line);
    } while (/^\d{3}-/.test(line));
    if (!line.startsWith(String(want))) throw new Error(`SMTP ${what}: expected ${want}, got ${all.join(' | ')}`);
  };
  const send = (s) => sock.write(s, 'utf8');
  const run = async () => {
    await reply(220, 'greeting');
    send(`EHLO orchard-sdk-tests${CRLF}`);
    await reply(250, 'EHLO');
    send(`MAIL FROM:<${from}>${CRLF}`);
    await reply(250, 'MAIL FROM');
    for (const r of rcpts) {
      send(`RCPT TO:<${r}>${CRLF}`);
      await reply(250, `RCPT TO ${r}`);
    }
    send(`DATA${CRLF}`);
    await reply(354, 'DATA');
    let d = data.replace(/\r?\n/g, CRLF).replace(/^\./gm, '..');
    if (!d.endsWith(CRLF)) d += CRLF;
    send(`${d}.${CRLF}`);
    await reply(250, 'end of DATA');
    send(`QUIT${CRLF}`);
    await reply(221, 'QUIT');
    sock.end();
  };
  await withTimeout(run(), 10000, 'SMTP inject', sock);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function imapDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
const imapQuote = (s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/**
 * A logged-in IMAP session (TLS, the test CA) as another mail client of
 * user would have: APPEND with INTERNALDATE and flags, STORE, STATUS.
 * Server responses with literals are not supported (no FETCH of bodies).
 */
export async function imapSession(user) {
  const env = testEnv();
  const sock = tls.connect({ host: env.imap.host, port: env.imap.port, ca: fs.readFileSync(env.caFile), servername: 'localhost' });
  const rd = lineReader(sock);
  let n = 0;
  const run = async (command, literal) => {
    const tag = `s${++n}`;
    if (literal !== undefined) {
      const bytes = Buffer.from(literal, 'utf8');
      sock.write(`${tag} ${command} {${bytes.length}}${CRLF}`);
      const cont = await rd.next();
      if (!cont.startsWith('+')) throw new Error(`IMAP ${command}: expected a continuation, got ${cont}`);
      sock.write(Buffer.concat([bytes, Buffer.from(CRLF)]));
    } else {
      sock.write(`${tag} ${command}${CRLF}`);
    }
    const untagged = [];
    for (;;) {
      const line = await rd.next();
      if (line.startsWith(`${tag} `)) {
        if (!line.startsWith(`${tag} OK`)) throw new Error(`IMAP ${command.split(' ')[0]}: ${line}`);
        return { untagged, done: line };
      }
      untagged.push(line);
    }
  };
  const cmd = (command, literal) => withTimeout(run(command, literal), 10000, `IMAP ${command.split(' ')[0]}`, sock);
  const greeting = await withTimeout(rd.next(), 10000, 'IMAP greeting', sock);
  if (!greeting.startsWith('* OK')) throw new Error(`IMAP greeting: ${greeting}`);
  await cmd(`LOGIN ${imapQuote(user)} ${imapQuote(env.users[user])}`);
  return {
    /** APPEND raw to folder with INTERNALDATE date and flags; returns the UID (UIDPLUS). */
    async append(folder, raw, { date = new Date(), flags = [] } = {}) {
      const { done } = await cmd(`APPEND ${imapQuote(folder)} (${flags.join(' ')}) "${imapDate(date)}"`, raw.replace(/\r?\n/g, CRLF));
      const uid = /APPENDUID \d+ (\d+)/.exec(done)?.[1];
      return uid ? Number(uid) : undefined;
    },
    /** {messages, unseen} of folder from STATUS. */
    async status(folder) {
      const { untagged } = await cmd(`STATUS ${imapQuote(folder)} (MESSAGES UNSEEN)`);
      const line = untagged.find((l) => l.startsWith('* STATUS')) ?? '';
      return { messages: Number(/MESSAGES (\d+)/.exec(line)?.[1]), unseen: Number(/UNSEEN (\d+)/.exec(line)?.[1]) };
    },
    /** UID STORE in folder: e.g. store('INBOX', 7, '+FLAGS.SILENT (\\Flagged)'). */
    async store(folder, uid, what) {
      await cmd(`SELECT ${imapQuote(folder)}`);
      await cmd(`UID STORE ${uid} ${what}`);
      await cmd('CLOSE');
    },
    /** Folder names from LIST "" "*". */
    async list() {
      const { untagged } = await cmd('LIST "" "*"');
      return untagged.filter((l) => l.startsWith('* LIST ')).map((l) => {
        const name = /^\* LIST \([^)]*\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$/.exec(l)?.[1] ?? '';
        return name.startsWith('"') ? name.slice(1, -1).replace(/\\(.)/g, '$1') : name;
      });
    },
    /** CREATE folder. */
    async create(folder) {
      await cmd(`CREATE ${imapQuote(folder)}`);
    },
    /** DELETE folder (with its messages). */
    async deleteFolder(folder) {
      await cmd(`DELETE ${imapQuote(folder)}`);
    },
    /** UIDs in folder whose Subject contains text (UID SEARCH). */
    async search(folder, text) {
      await cmd(`EXAMINE ${imapQuote(folder)}`);
      const { untagged } = await cmd(`UID SEARCH SUBJECT ${imapQuote(text)}`);
      return (untagged.find((l) => l.startsWith('* SEARCH')) ?? '').split(' ').slice(2).filter(Boolean).map(Number);
    },
    /** Deletes (flag + UID EXPUNGE) the messages of folder whose Subject contains text; returns how many. */
    async deleteTagged(folder, text) {
      const uids = await this.search(folder, text);
      if (uids.length > 0) {
        await cmd(`SELECT ${imapQuote(folder)}`);
        await cmd(`UID STORE ${uids.join(',')} +FLAGS.SILENT (\\Deleted)`);
        await cmd(`UID EXPUNGE ${uids.join(',')}`);
        await cmd('CLOSE');
      }
      return uids.length;
    },
    async close() {
      try {
        await cmd('LOGOUT');
      } catch {
        /* the server may close first */
      }
      sock.destroy();
    },
  };
}

/** Polls fn (async) every interval ms until it returns a truthy value; throws what() after timeout ms. */
export async function waitFor(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${typeof what === 'function' ? await what() : what}`);
    await sleep(interval);
  }
}

/** GET /v3/grants/{id}/sync (Orchard extension; no SDK method): the data object. */
export async function syncStatus(server, grantId) {
  const r = await fetch(`${server.url}/v3/grants/${encodeURIComponent(grantId)}/sync`, { headers: { Authorization: `Bearer ${server.apiKey}` } });
  assert.equal(r.status, 200, `GET /v3/grants/${grantId}/sync → ${r.status}: ${await r.clone().text()}`);
  return (await r.json()).data;
}

/**
 * Creates the imap connector and an imap grant for user on server, and
 * waits until its initial sync is done and the worker watches INBOX
 * (state idle). Returns the grant.
 */
export async function connectMailbox(server, nylas, user) {
  const env = testEnv();
  await nylas.connectors.create({ requestBody: { provider: 'imap' } });
  const grant = (await nylas.auth.customAuthentication({
    requestBody: {
      provider: 'imap',
      settings: {
        imapUsername: user, imapPassword: env.users[user], imapHost: env.imap.host, imapPort: env.imap.port,
        smtpHost: env.smtp.host, smtpPort: env.smtp.port,
      },
    },
  })).data;
  let last;
  await waitFor(async () => (last = await syncStatus(server, grant.id)).initial_sync_done && last.state === 'idle', {
    timeout: 15000, what: () => `the initial sync of ${user}: ${JSON.stringify(last)}`,
  });
  return grant;
}

/** Every item of a messages/threads list, following next_cursor (the SDK's async iterator). */
export async function listAll(resource, args) {
  const pages = [];
  for await (const page of resource.list(args)) pages.push(page);
  return { items: pages.flatMap((p) => p.data), pages };
}

/**
 * Mail options for startOrchard: IMAP gets more than the default 3 s so
 * that a busy machine does not turn a slow login into a 504. The poll
 * interval stays at its default (60 s), so new INBOX mail within seconds
 * proves IDLE; add ORCHARD_SYNC_POLL_INTERVAL to watch other folders.
 */
export const MAIL_ENV = Object.freeze({ ORCHARD_PROVIDER_TIMEOUT: '15s' });

/**
 * Removes this run's messages (Subject contains tag) from user's folders,
 * so that the shared test mailbox does not grow run after run. Kept with
 * ORCHARD_SDK_KEEP=1.
 */
export async function removeTagged(user, tag, folders = ['INBOX']) {
  if (process.env.ORCHARD_SDK_KEEP) return;
  const im = await imapSession(user);
  try {
    for (const f of folders) await im.deleteTagged(f, tag);
  } finally {
    await im.close();
  }
}

// ---------------------------------------------------------------------------
// Mail: reading whole messages back from the server (send and drafts tests).

/**
 * The messages of user's folder whose Subject contains text, read over
 * IMAP (TLS, the test CA) with UID FETCH (UID FLAGS BODY.PEEK[]): an array
 * of {uid, flags, raw} in UID order, raw the exact bytes (a Buffer).
 * Unlike imapSession, this reads literals, so bodies of any size come back.
 */
export async function imapFetch(user, folder, text) {
  const env = testEnv();
  const sock = tls.connect({ host: env.imap.host, port: env.imap.port, ca: fs.readFileSync(env.caFile), servername: 'localhost' });
  let buf = Buffer.alloc(0);
  const chunks = [];
  let pending = 0; // bytes in chunks
  let failure = null;
  let wake = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  sock.on('data', (d) => {
    chunks.push(d);
    pending += d.length;
    poke();
  });
  sock.on('error', (e) => {
    failure ??= e;
    poke();
  });
  sock.on('close', () => {
    failure ??= new Error('connection closed');
    poke();
  });
  /** Waits until buf holds at least n bytes (n = 0: any new data), joining the chunks once. */
  const more = async (n = 0) => {
    while (chunks.length === 0 || buf.length + pending < n) {
      if (failure) throw failure;
      await new Promise((r) => (wake = r));
    }
    buf = Buffer.concat([buf, ...chunks.splice(0)]);
    pending = 0;
  };
  /** One response line; a literal {n} is read into the line's literals. */
  const readLine = async () => {
    let text = '';
    const literals = [];
    for (;;) {
      let i;
      while ((i = buf.indexOf('\r\n')) < 0) await more();
      const part = buf.subarray(0, i).toString('latin1');
      buf = buf.subarray(i + 2);
      text += part;
      const m = /\{(\d+)\}$/.exec(part);
      if (!m) return { text, literals };
      const n = Number(m[1]);
      if (buf.length < n) await more(n);
      literals.push(Buffer.from(buf.subarray(0, n)));
      buf = buf.subarray(n);
    }
  };
  let n = 0;
  const run = async (command) => {
    const tag = `f${++n}`;
    sock.write(`${tag} ${command}${CRLF}`);
    const untagged = [];
    for (;;) {
      const line = await readLine();
      if (line.text.startsWith(`${tag} `)) {
        if (!line.text.startsWith(`${tag} OK`)) throw new Error(`IMAP ${command.split(' ')[0]}: ${line.text}`);
        return untagged;
      }
      untagged.push(line);
    }
  };
  const cmd = (command) => withTimeout(run(command), 30000, `IMAP ${command.split(' ')[0]}`, sock);
  try {
    const greeting = await withTimeout(readLine(), 10000, 'IMAP greeting', sock);
    if (!greeting.text.startsWith('* OK')) throw new Error(`IMAP greeting: ${greeting.text}`);
    await cmd(`LOGIN ${imapQuote(user)} ${imapQuote(env.users[user])}`);
    await cmd(`EXAMINE ${imapQuote(folder)}`);
    const found = (await cmd(`UID SEARCH SUBJECT ${imapQuote(text)}`)).find((l) => l.text.startsWith('* SEARCH'));
    const uids = (found?.text ?? '').split(' ').slice(2).filter(Boolean).map(Number);
    if (uids.length === 0) return [];
    const out = [];
    for (const line of await cmd(`UID FETCH ${uids.join(',')} (UID FLAGS BODY.PEEK[])`)) {
      if (!/^\* \d+ FETCH /.test(line.text)) continue;
      const uid = Number(/UID (\d+)/.exec(line.text)?.[1]);
      const flags = (/FLAGS \(([^)]*)\)/.exec(line.text)?.[1] ?? '').split(' ').filter(Boolean);
      if (line.literals.length !== 1) throw new Error(`IMAP FETCH: expected one literal in ${line.text}`);
      out.push({ uid, flags, raw: line.literals[0] });
    }
    return out.sort((a, b) => a.uid - b.uid);
  } finally {
    sock.write(`f${++n} LOGOUT${CRLF}`);
    sock.end();
    sock.destroy();
  }
}

/** Decodes RFC 2047 encoded words (B and Q, UTF-8 and Latin-1) in a header value. */
export function decodeWords(s) {
  return s
    .replace(/(=\?[^?]+\?[BbQq]\?[^?]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?*]+)(?:\*[^?]*)?\?([BbQq])\?([^?]*)\?=/g, (_, charset, enc, data) => {
      const bytes = enc.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64')
        : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (__, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
      return bytes.toString(/^utf-?8$/i.test(charset) ? 'utf8' : 'latin1');
    });
}

/** Splits `type/sub; a=b; c="d"` into {value, params} (RFC 2231 name*=charset''x and name*0* continuations decoded). */
export function headerParams(v = '') {
  const parts = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (quoted && c === '\\') {
      cur += v[++i] ?? '';
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (c === ';' && !quoted) {
      parts.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  parts.push(cur.trim());
  const params = {};
  const pieces = {};
  for (const p of parts.slice(1)) {
    const i = p.indexOf('=');
    if (i <= 0) continue;
    const key = p.slice(0, i).trim().toLowerCase();
    const val = p.slice(i + 1).trim();
    const m = /^([^*]+)(?:\*(\d+))?(\*)?$/.exec(key);
    if (!m) continue;
    (pieces[m[1]] ??= []).push({ n: Number(m[2] ?? 0), enc: !!m[3], val });
  }
  for (const [name, list] of Object.entries(pieces)) {
    list.sort((a, b) => a.n - b.n);
    let charset = 'utf-8';
    const bytes = [];
    for (const [k, { enc, val }] of list.entries()) {
      let s = val;
      if (enc) {
        if (k === 0) {
          const q = /^([^']*)'[^']*'(.*)$/.exec(s);
          if (q) [charset, s] = [q[1] || 'utf-8', q[2]];
        }
        bytes.push(Buffer.from(s.replace(/%([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1'));
      } else bytes.push(Buffer.from(decodeWords(s), 'utf8'));
    }
    params[name] = Buffer.concat(bytes).toString(/^utf-?8$/i.test(charset) ? 'utf8' : 'latin1');
  }
  return { value: parts[0].toLowerCase(), params };
}

/**
 * Parses an RFC 5322 message (Buffer) into a MIME tree:
 * {headers: {lower-case name: [raw values]}, header(name) (first value, RFC 2047 decoded),
 *  type, params, disposition, filename, cid, body (decoded Buffer, leaves only), parts}.
 */
export function parseMime(raw) {
  const sep = raw.indexOf('\r\n\r\n');
  const headText = (sep < 0 ? raw : raw.subarray(0, sep)).toString('latin1');
  const body = sep < 0 ? Buffer.alloc(0) : raw.subarray(sep + 4);
  const headers = {};
  for (const line of headText.replace(/\r\n(?=[ \t])/g, '').split('\r\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    (headers[line.slice(0, i).trim().toLowerCase()] ??= []).push(line.slice(i + 1).trim());
  }
  const header = (name) => {
    const v = headers[name.toLowerCase()]?.[0];
    return v === undefined ? undefined : decodeWords(Buffer.from(v, 'latin1').toString('utf8'));
  };
  const ct = headerParams(headers['content-type']?.[0] ?? 'text/plain');
  const cd = headerParams(headers['content-disposition']?.[0] ?? '');
  const node = {
    headers, header, type: ct.value, params: ct.params, disposition: cd.value || undefined,
    filename: cd.params.filename ?? ct.params.name, cid: header('content-id')?.replace(/^<|>$/g, ''), parts: [],
  };
  if (ct.value.startsWith('multipart/')) {
    const delim = Buffer.from(`--${ct.params.boundary}`);
    const at = [];
    for (let i = body.indexOf(delim); i >= 0; i = body.indexOf(delim, i + delim.length)) {
      if (i === 0 || (body[i - 2] === 13 && body[i - 1] === 10)) at.push(i);
    }
    for (let k = 0; k < at.length; k++) {
      const start = at[k] + delim.length;
      if (body[start] === 45 && body[start + 1] === 45) break; // the closing --boundary--
      const from = body.indexOf('\r\n', start) + 2;
      const to = k + 1 < at.length ? at[k + 1] - 2 : body.length;
      node.parts.push(parseMime(body.subarray(from, Math.max(from, to))));
    }
    return node;
  }
  const cte = (headers['content-transfer-encoding']?.[0] ?? '7bit').toLowerCase();
  if (cte === 'base64') node.body = Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  else if (cte === 'quoted-printable') {
    node.body = Buffer.from(body.toString('latin1').replace(/=\r\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  } else node.body = body;
  return node;
}

/** The leaves (non-multipart parts) of a parseMime tree, depth first. */
export function mimeLeaves(node) {
  return node.parts.length === 0 && !node.type.startsWith('multipart/') ? [node] : node.parts.flatMap(mimeLeaves);
}
