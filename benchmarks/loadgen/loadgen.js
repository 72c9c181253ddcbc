#!/usr/bin/env node
'use strict';
// Load generator for the syncaerys side-by-side benchmark (driven by ../run.py).
//
//   node loadgen.js SCENARIO --url ws://127.0.0.1:PORT [options]
//
// Scenarios: echo, block, large, broadcast, burst, scale, many (options below, in DEFAULTS).
// Every loop is bounded by a count and by a deadline; the process exits by
// itself (--timeout is the hard limit for the whole run).
//
// Talking to the runner: stdout carries one JSON object per line.
//   {"type":"mark","name":...,"sample":bool}  the runner samples the server
//       process (/proc/PID/stat, and with sample=true also RSS, threads and
//       fds), then writes one line on our stdin; we wait for that line.
//       Without --marks we do not wait (standalone use). With "settle":NAME
//       (and a number of seconds, "within") the runner first waits, bounded,
//       until the server's threads and fds are back to mark NAME's.
//   {"type":"result",...}                     the figures, once, at the end.
// Progress and errors go to stderr.

const WebSocket = require('ws');
const readline = require('readline');

const DEFAULTS = {
  url: 'ws://127.0.0.1:8765/',
  clients: 1, // echo/block: concurrent clients, each with one message in flight
  size: 32, // echo/burst: message size in bytes; large: 1 MiB
  messages: 1000000, // echo/block/large: total round trips (bound by count)
  duration: 5, // echo/block/large: seconds measured (bound by time)
  warmup: 1, // echo/block/large: seconds of round trips before measuring
  block: 0.005, // block: seconds the server's handler blocks per message
  op: 'block', // block: the request's key: block (time.sleep), blockc (a wait inside sqlite3), db (Django: pg_sleep)
  split: 5, // large: MB/s is also given for the window's first `split` seconds and for the rest
  wsMask: false, // large: use ws's client (a fresh mask key and masked copy per message) instead of the raw one
  count: 100, // broadcast: messages per broadcast
  bsize: 64, // broadcast: message size
  reps: 3, // broadcast/burst: repetitions on the same connections
  steps: '100,1000,5000', // scale: connection counts where the server is sampled
  settle: 60, // many: seconds the runner waits for the server's threads and fds to come back after the clients left
  connectConcurrency: 64, // handshakes in flight while opening connections
  waitTimeout: 60, // broadcast/burst: seconds one repetition may take
  timeout: 300, // hard limit for the whole process, seconds
  marks: false, // wait for the runner's answer at each mark
};

function parseArgs(argv) {
  const opts = { ...DEFAULTS, scenario: argv[0] };
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const key = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in DEFAULTS)) throw new Error(`unknown option ${arg}`);
    if (typeof DEFAULTS[key] === 'boolean') {
      opts[key] = true;
    } else {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      opts[key] = typeof DEFAULTS[key] === 'number' ? Number(value) : value;
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const hardDeadline = setTimeout(() => {
  log(`hard timeout of ${opts.timeout}s reached, exiting`);
  process.exit(3);
}, opts.timeout * 1000);
hardDeadline.unref();

function log(msg) {
  process.stderr.write(`loadgen: ${msg}\n`);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const now = () => Number(process.hrtime.bigint()) / 1e9; // seconds
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// --- marks: a rendezvous with the runner --------------------------------

const answers = [];
let answerWaiter = null;
if (opts.marks) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', () => {
    if (answerWaiter) {
      const w = answerWaiter;
      answerWaiter = null;
      w();
    } else {
      answers.push(true);
    }
  });
}

async function mark(name, sample = false, extra = {}) {
  emit({ type: 'mark', name, sample, ...extra });
  if (!opts.marks) return;
  if (answers.length) {
    answers.shift();
    return;
  }
  let timer;
  await new Promise((resolve, reject) => {
    answerWaiter = resolve;
    const patience = 60000 + 1000 * (extra.within || 0);
    timer = setTimeout(() => reject(new Error(`no answer from the runner at mark ${name}`)), patience);
  });
  clearTimeout(timer);
}

// --- connections ----------------------------------------------------------

const WS_OPTIONS = {
  perMessageDeflate: false, // ws offers it by default; no peer runs with it here
  skipUTF8Validation: true, // the generator's CPU is not what we measure
  handshakeTimeout: 30000,
};

function openOne(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, WS_OPTIONS);
    ws.binaryType = 'nodebuffer';
    const onError = (err) => {
      ws.removeListener('open', onOpen);
      reject(err);
    };
    const onOpen = () => {
      ws.removeListener('error', onError);
      ws.on('error', (err) => {
        ws.lastError = err;
      });
      resolve(ws);
    };
    ws.once('open', onOpen);
    ws.once('error', onError);
  });
}

// --url may list several servers (comma-separated): connection i goes to
// server i modulo their number (the cluster benchmark spreads clients so).
const URLS = String(opts.url).split(',');
const urlFor = (i) => URLS[i % URLS.length];

// Opens n connections with at most `concurrency` handshakes in flight; each
// gets `setup(ws, index)` before any message can arrive. Retries a failed
// handshake 5 times; bounded by a deadline.
async function openMany(n, setup, startIndex = 0) {
  const sockets = new Array(n);
  const deadline = now() + Math.max(60, n / 20);
  let next = 0;
  let failures = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        if (now() > deadline) throw new Error(`opening ${n} connections took too long`);
        try {
          const ws = await openOne(urlFor(startIndex + i));
          setup(ws, startIndex + i);
          sockets[i] = ws;
          break;
        } catch (err) {
          failures++;
          if (attempt >= 5) throw new Error(`connection ${startIndex + i} failed: ${err.message}`);
          await sleep(0.1 * (attempt + 1));
        }
      }
    }
  }
  const workers = [];
  for (let w = 0; w < Math.min(opts.connectConcurrency, n); w++) workers.push(worker());
  await Promise.all(workers);
  if (failures) log(`${failures} handshake(s) had to be retried`);
  return sockets;
}

function closeAll(sockets) {
  for (const ws of sockets) if (ws) ws.terminate();
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// --- echo: N clients, one message in flight each ---------------------------

// The large scenario's client (unless --ws-mask): a raw WebSocket client
// written for one job, echoing one big binary message at a time, so that the
// generator costs less than the servers it measures. Measured against picows
// on this machine, ws's client spends per 1 MiB echo a fresh mask key and a
// masked copy of the payload (send) and a 1 MiB concatenation of the received
// chunks into a freshly allocated Buffer (receive, page faults included): its
// share of each round trip was about that of a fast server, so the generator
// set the rate near 600 MB/s. This client
//   - writes one premasked frame, built once with one random key, for every
//     message (RFC 6455 5.3 asks for an unpredictable key per frame, against
//     cache poisoning of intermediaries, which do not exist on loopback);
//   - reads the echo without copying it: it follows the frame headers, counts
//     the payload bytes of each message (the server may fragment it) and
//     compares the first echo with the payload in full, the later ones by
//     length; it answers pings (with a masked pong) and fails on anything else.
// One message is in flight per socket (the closed loop), so its own frames
// (pongs) can only go between whole messages.

const crypto = require('crypto');
const net = require('net');

function maskedFrame(opcode, payload, key = crypto.randomBytes(4)) {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + length);
  frame[0] = 0x80 | opcode;
  if (head === 2) {
    frame[1] = 0x80 | length;
  } else if (head === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  key.copy(frame, head);
  for (let i = 0; i < length; i++) frame[head + 4 + i] = payload[i] ^ key[i & 3];
  return frame;
}

class RawClient {
  constructor(socket, payload, rest) {
    this._socket = socket;
    this.payload = payload;
    this.premasked = maskedFrame(0x2, payload);
    this.onEcho = null;
    this.sentAt = 0;
    this.header = Buffer.alloc(14); // a frame header split across reads is gathered here
    this.headerHave = 0;
    this.remaining = 0; // payload bytes of the current frame still to come
    this.inPayload = false;
    this.control = null; // the current control frame: {opcode, parts}
    this.fin = false;
    this.messageBytes = 0;
    this.firstParts = []; // the first echo, kept to compare with the payload
    this.checked = false;
    socket.on('data', (chunk) => this.feed(chunk));
    if (rest.length) this.feed(rest);
  }

  fail(message) {
    log(`error: raw client: ${message}`);
    process.exit(1);
  }

  feed(chunk) {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining === 0 && !this.inPayload) {
        at = this.readHeader(chunk, at);
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      if (this.control) this.control.parts.push(chunk.subarray(at, at + take));
      else {
        this.messageBytes += take;
        if (!this.checked) this.firstParts.push(chunk.subarray(at, at + take));
      }
      this.remaining -= take;
      at += take;
      if (this.remaining === 0) this.frameDone();
    }
  }

  readHeader(chunk, at) {
    // Gathers the header into this.header; returns where the payload starts.
    const need = () => {
      if (this.headerHave < 2) return 2;
      const len = this.header[1] & 0x7f;
      return len === 126 ? 4 : len === 127 ? 10 : 2;
    };
    while (this.headerHave < need() && at < chunk.length) this.header[this.headerHave++] = chunk[at++];
    if (this.headerHave < need()) return at;
    const h = this.header;
    if (h[1] & 0x80) this.fail('a masked frame from the server');
    const len7 = h[1] & 0x7f;
    const length = len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7;
    const opcode = h[0] & 0x0f;
    this.fin = (h[0] & 0x80) !== 0;
    this.headerHave = 0;
    if (opcode >= 0x8) {
      if (opcode === 0x8) this.fail('the server closed the connection');
      this.control = { opcode, parts: [] };
    } else {
      this.control = null;
    }
    this.remaining = length;
    this.inPayload = length > 0;
    if (length === 0) this.frameDone();
    return at;
  }

  frameDone() {
    this.inPayload = false;
    if (this.control) {
      const { opcode, parts } = this.control;
      this.control = null;
      if (opcode === 0x9) this._socket.write(maskedFrame(0xa, Buffer.concat(parts)));
      return;
    }
    if (!this.fin) return;
    const size = this.messageBytes;
    this.messageBytes = 0;
    if (size !== this.payload.length) this.fail(`a ${size}-byte echo of a ${this.payload.length}-byte message`);
    if (!this.checked) {
      if (!Buffer.concat(this.firstParts).equals(this.payload)) this.fail('the echo differs from the message');
      this.checked = true;
      this.firstParts = null;
    }
    if (this.onEcho) this.onEcho(size);
  }

  terminate() {
    this._socket.destroy();
  }
}

function openRaw(url, payload) {
  // The opening handshake of RFC 6455 4.1, checked (101 and Sec-WebSocket-Accept).
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const accept = crypto
      .createHash('sha1')
      .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
      .digest('base64');
    const socket = net.connect(Number(u.port || 80), u.hostname);
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw handshake: no answer in 30 s'));
    }, 30000);
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      const got = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text);
      if (!text.startsWith('HTTP/1.1 101') || !got || got[1] !== accept) {
        socket.destroy();
        reject(new Error(`raw handshake refused: ${text.split('\r\n')[0]}`));
        return;
      }
      resolve(new RawClient(socket, payload, head.subarray(end + 4)));
    };
    socket.on('data', onData);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
}

async function roundTrips(sockets, payload, binary, maxMessages, seconds, latencies, times = null) {
  // Every client sends, waits for its echo, sends again, until the total
  // count or the deadline is reached (a closed loop). Returns {count,
  // elapsed, cpu}. `latencies` and `times` (optional) get each round trip's
  // latency and its completion time since the start, in seconds. A socket
  // with a `premasked` frame (a RawClient) writes that instead of `payload`.
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    let active = sockets.length;
    const t0 = now();
    const cpu0 = cpuSeconds();
    const deadline = t0 + seconds;
    const guard = setTimeout(() => reject(new Error('echo: no progress, an echo went missing')), (seconds + 30) * 1000);
    const finish = () => {
      clearTimeout(guard);
      for (const ws of sockets) ws.onEcho = null;
      resolve({ count: done, elapsed: now() - t0, cpu: cpuSeconds() - cpu0 });
    };
    const sendOn = (ws) => {
      sent++;
      ws.sentAt = now();
      if (ws.premasked) ws._socket.write(ws.premasked);
      else ws.send(payload, { binary });
    };
    for (const ws of sockets) {
      ws.onEcho = (data) => {
        const t = now();
        if (latencies && done < latencies.length) latencies[done] = t - ws.sentAt;
        if (times && done < times.length) times[done] = t - t0;
        done++;
        if (sent < maxMessages && t < deadline) {
          sendOn(ws);
        } else if (--active === 0) {
          finish();
        }
      };
    }
    for (const ws of sockets) {
      if (sent < maxMessages) sendOn(ws);
      else active--;
    }
    if (active === 0) finish();
  });
}

async function scenarioEcho(large) {
  const n = large ? 1 : opts.clients;
  const size = large ? 1 << 20 : opts.size;
  const payload = Buffer.alloc(size, large ? 0xab : 0x78); // 'x' for text
  const binary = large;
  const raw = large && !opts.wsMask;
  const sockets = raw
    ? await Promise.all(Array.from({ length: n }, (_, i) => openRaw(urlFor(i), payload)))
    : await openMany(n, (ws) => {
        ws.on('message', (data) => {
          if (large && data.length !== size) {
            log(`error: a ${data.length}-byte echo of a ${size}-byte message`);
            process.exit(1);
          }
          if (ws.onEcho) ws.onEcho(data);
        });
      });
  log(`${n} connection(s) open, warming up ${opts.warmup}s`);
  const w = await roundTrips(sockets, payload, binary, Math.max(1, Math.floor(opts.messages / 10)), opts.warmup, null);
  const latencies = new Float64Array(Math.min(opts.messages, 5000000));
  const times = large ? new Float64Array(latencies.length) : null;
  await mark('start');
  const r = await roundTrips(sockets, payload, binary, opts.messages, opts.duration, latencies, times);
  await mark('end');
  const lat = Array.from(latencies.subarray(0, Math.min(r.count, latencies.length))).sort((a, b) => a - b);
  closeAll(sockets);
  const result = {
    clients: n,
    size,
    count: r.count,
    elapsed: r.elapsed,
    rate: r.count / r.elapsed,
    mbps: (r.count * size) / r.elapsed / 1e6,
    p50_ms: percentile(lat, 50) * 1e3,
    p99_ms: percentile(lat, 99) * 1e3,
    gen_cpu: r.cpu,
  };
  if (large) {
    // The server is fresh (the runner starts one per scenario): the warm-up
    // is its first second of 1 MiB messages; the window is split in two.
    const split = Math.min(opts.split, r.elapsed);
    let first = 0;
    for (let i = 0; i < Math.min(r.count, times.length); i++) if (times[i] <= split) first++;
    result.warmup_mbps = (w.count * size) / w.elapsed / 1e6;
    result.split = split;
    result.first_mbps = (first * size) / split / 1e6;
    result.client = raw ? 'raw' : 'ws';
    result.rest_mbps = r.elapsed > split ? ((r.count - first) * size) / (r.elapsed - split) / 1e6 : null;
  }
  return result;
}

// --- block: N clients, each message costs the server a blocking handler ----

async function scenarioBlock() {
  // Closed loop as in echo, but every message is JSON {"block":SECONDS,...}
  // (or {"blockc":...}, {"db":...}: --op): the server blocks that long, then
  // answers with a JSON reply (see servers/_common.py). The ideal rate is
  // clients / block.
  const payload = Buffer.from(JSON.stringify({ [opts.op]: opts.block, id: 1, pad: 'x'.repeat(16) }));
  const sockets = await openMany(opts.clients, (ws) => {
    ws.on('message', (data) => {
      if (ws.onEcho) ws.onEcho(data);
    });
  });
  // One request first: the answer must be the handler's reply, not an echo.
  const first = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('block: no answer to the first request in 30 s')), 30000);
    sockets[0].onEcho = (data) => {
      clearTimeout(timer);
      sockets[0].onEcho = null;
      resolve(String(data));
    };
    sockets[0].send(payload, { binary: false });
  });
  let reply = null;
  try {
    reply = JSON.parse(first);
  } catch (err) {
    reply = null;
  }
  if (!reply || reply.slept !== opts.block || reply.id !== 1) {
    throw new Error(`block: the server answered ${first.slice(0, 80)} instead of the handler's JSON reply`);
  }
  log(`${opts.clients} connection(s) open, warming up ${opts.warmup}s`);
  await roundTrips(sockets, payload, false, Math.max(1, Math.floor(opts.messages / 10)), opts.warmup, null);
  const latencies = new Float64Array(Math.min(opts.messages, 5000000));
  await mark('start');
  const r = await roundTrips(sockets, payload, false, opts.messages, opts.duration, latencies);
  await mark('end');
  const lat = Array.from(latencies.subarray(0, Math.min(r.count, latencies.length))).sort((a, b) => a - b);
  closeAll(sockets);
  return {
    clients: opts.clients,
    block: opts.block,
    count: r.count,
    elapsed: r.elapsed,
    rate: r.count / r.elapsed,
    ideal: opts.clients / opts.block,
    p50_ms: percentile(lat, 50) * 1e3,
    p99_ms: percentile(lat, 99) * 1e3,
    gen_cpu: r.cpu,
  };
}

// --- broadcast: one trigger, every client counts deliveries ----------------

async function scenarioBroadcast() {
  let received = 0;
  let target = Infinity;
  let onDone = null;
  const sockets = await openMany(opts.clients, (ws) => {
    ws.on('message', () => {
      received++;
      if (received >= target && onDone) {
        const f = onDone;
        onDone = null;
        f();
      }
    });
  });
  log(`${sockets.length} connections open`);
  await sleep(0.5);
  const reps = [];
  const expected = opts.clients * opts.count;
  for (let rep = 0; rep < opts.reps; rep++) {
    received = 0;
    target = expected;
    await mark(`start-${rep}`);
    const t0 = now();
    const cpu0 = cpuSeconds();
    const complete = new Promise((resolve) => {
      onDone = resolve;
    });
    sockets[0].send(`broadcast:${opts.count}:${opts.bsize}`);
    const ok = await Promise.race([complete.then(() => true), sleep(opts.waitTimeout).then(() => false)]);
    const elapsed = now() - t0;
    const cpu = cpuSeconds() - cpu0;
    await mark(`end-${rep}`);
    reps.push({ elapsed, received, complete: ok, rate: received / elapsed, gen_cpu: cpu });
    if (!ok) {
      log(`broadcast rep ${rep}: only ${received}/${expected} after ${opts.waitTimeout}s`);
      break;
    }
    // Let stragglers (there should be none) arrive before the next round.
    await sleep(0.3);
    if (received !== expected) log(`broadcast rep ${rep}: ${received} deliveries, expected ${expected}`);
  }
  closeAll(sockets);
  return { clients: opts.clients, count: opts.count, size: opts.bsize, expected, reps };
}

// --- burst: every open connection sends one message at once ---------------

async function scenarioBurst() {
  let received = 0;
  let target = Infinity;
  let onDone = null;
  const sockets = await openMany(opts.clients, (ws) => {
    ws.on('message', () => {
      received++;
      if (received >= target && onDone) {
        const f = onDone;
        onDone = null;
        f();
      }
    });
  });
  log(`${sockets.length} connections open`);
  await sleep(1);
  const payload = Buffer.alloc(opts.size, 0x78);
  const reps = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    received = 0;
    target = sockets.length;
    await mark(`start-${rep}`);
    const t0 = now();
    const cpu0 = cpuSeconds();
    const complete = new Promise((resolve) => {
      onDone = resolve;
    });
    for (const ws of sockets) ws.send(payload, { binary: false });
    const sentAt = now() - t0;
    const ok = await Promise.race([complete.then(() => true), sleep(opts.waitTimeout).then(() => false)]);
    const elapsed = now() - t0;
    const cpu = cpuSeconds() - cpu0;
    await mark(`end-${rep}`);
    reps.push({ elapsed, send_loop: sentAt, received, complete: ok, gen_cpu: cpu });
    if (!ok) {
      log(`burst rep ${rep}: only ${received}/${sockets.length} echoes after ${opts.waitTimeout}s`);
      break;
    }
    await sleep(1);
  }
  closeAll(sockets);
  return { clients: sockets.length, reps };
}

// --- scale: idle connections, sampled by the runner at each step -----------

async function scenarioScale() {
  const steps = opts.steps
    .split(',')
    .map(Number)
    .filter((x) => x > 0)
    .sort((a, b) => a - b);
  const sockets = [];
  await sleep(0.5);
  await mark('conns-0', true);
  for (const step of steps) {
    const more = await openMany(step - sockets.length, () => {}, sockets.length);
    sockets.push(...more);
    log(`${sockets.length} idle connections`);
    await sleep(1); // let every server thread reach its idle wait
    await mark(`conns-${step}`, true);
  }
  const alive = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  closeAll(sockets);
  return { steps, alive };
}

// --- many: N idle clients at once, one broadcast to all, then they all leave ---

async function scenarioMany() {
  // The runner samples the server before (conns-0), with every client
  // connected (conns-N), and after they all left (left: once its threads and
  // fds are back to conns-0's, or --settle seconds passed). Measured here:
  // the time to connect them all (--connect-concurrency handshakes in flight)
  // and, per repetition, from the broadcast's trigger to the last client's
  // receipt of its --bsize bytes.
  const n = opts.clients;
  let received = 0;
  let target = Infinity;
  let onDone = null;
  await sleep(0.5);
  await mark('conns-0', true);
  const t0 = now();
  const sockets = await openMany(n, (ws) => {
    ws.on('message', () => {
      received++;
      if (received >= target && onDone) {
        const f = onDone;
        onDone = null;
        f();
      }
    });
  });
  const connect = now() - t0;
  log(`${n} connections open in ${connect.toFixed(2)} s`);
  await sleep(1); // let every server thread reach its idle wait
  await mark(`conns-${n}`, true);
  const reps = [];
  for (let rep = 0; rep < opts.reps; rep++) {
    received = 0;
    target = n;
    const t1 = now();
    const complete = new Promise((resolve) => {
      onDone = resolve;
    });
    sockets[0].send(`broadcast:1:${opts.bsize}`);
    const ok = await Promise.race([complete.then(() => true), sleep(opts.waitTimeout).then(() => false)]);
    reps.push({ elapsed: now() - t1, received, complete: ok });
    if (!ok) {
      log(`many rep ${rep}: only ${received}/${n} deliveries after ${opts.waitTimeout}s`);
      break;
    }
    await sleep(0.5);
  }
  const alive = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  const t2 = now();
  closeAll(sockets);
  await mark('left', true, { settle: 'conns-0', within: opts.settle });
  return { clients: n, connect, alive, reps, left_after: now() - t2, size: opts.bsize };
}

async function main() {
  const cpu0 = cpuSeconds();
  const t0 = now();
  let result;
  switch (opts.scenario) {
    case 'echo':
      result = await scenarioEcho(false);
      break;
    case 'large':
      result = await scenarioEcho(true);
      break;
    case 'block':
      result = await scenarioBlock();
      break;
    case 'broadcast':
      result = await scenarioBroadcast();
      break;
    case 'burst':
      result = await scenarioBurst();
      break;
    case 'scale':
      result = await scenarioScale();
      break;
    case 'many':
      result = await scenarioMany();
      break;
    default:
      throw new Error(`unknown scenario ${opts.scenario} (echo, block, large, broadcast, burst, scale, many)`);
  }
  result.type = 'result';
  result.scenario = opts.scenario;
  result.total_cpu = cpuSeconds() - cpu0;
  result.total_elapsed = now() - t0;
  emit(result);
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`error: ${err.stack || err}`);
    process.exit(1);
  },
);
