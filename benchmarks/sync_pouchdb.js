// PouchDB's own replicator, timed for benchmarks/sync.py. Prints one JSON line.
// POUCHDB=7 (default): pouchdb-core 7.3.1 + http/memory adapters, as installed by pouchdb-server;
// POUCHDB=9: the `pouchdb` 9.0.0 package (devDependency), local databases in LevelDB under a temp dir.
//   node sync_pouchdb.js pull <server> <user> <password> <sourceDb> <batchSize>         remote -> local
//   node sync_pouchdb.js push <server> <user> <password> <targetDb> <batchSize> <n>     local -> remote
//   node sync_pouchdb.js r2r  <server> <user> <password> <sourceDb> <targetDb> <batchSize>  remote -> remote
//   node sync_pouchdb.js fieldday <server> <user> <password> <db> <batchSize> <results> <photoBytes> <deadlineS>
//        a CSFR's day through a field link: pull the orders (default batch size), then push results
//        with 2 photos each, `batchSize` at a time, retrying a failed replication after 1 s until it completes.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');

const VERSION = process.env.POUCHDB || '7';
let PouchDB;
let localOptions;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pouch-'));
if (VERSION === '9') {
  PouchDB = require('pouchdb');
  localOptions = {};
} else {
  PouchDB = require('pouchdb-core')
    .plugin(require('pouchdb-adapter-http'))
    .plugin(require('pouchdb-adapter-memory'))
    .plugin(require('pouchdb-replication'));
  localOptions = { adapter: 'memory' };
}
let localCount = 0;
const newLocal = () => new PouchDB(path.join(tmp, `local-${localCount++}`), localOptions);
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const [mode, server, user, password, ...rest] = process.argv.slice(2);
const auth = { username: user, password: password };
const remote = (name) => new PouchDB(`${server}/${name}`, { auth, skip_setup: true });

function resultDoc(i) {
  // same shape and size as benchmarks/sync.py result_doc()
  return {
    _id: `result:${String(i).padStart(6, '0')}:${'b'.repeat(32)}`,
    doc_type: 'result', order_id: String(i), outcome: 'completed', csfr_id: 'csfr-7', device_id: 'tablet-7',
    completed_at: '2026-11-23T10:00:00Z', readings: [{ meter_id: `m${i}`, value: i * 10.5, unit: 'gal' }],
    notes: 'n'.repeat(60),
  };
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const info = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { docs_written: info.docs_written, seconds };
}

(async () => {
  let out;
  if (mode === 'pull') {
    const [source, batch] = rest;
    const local = newLocal();
    out = await timed(() => PouchDB.replicate(remote(source), local, { batch_size: Number(batch) }));
  } else if (mode === 'push') {
    const [target, batch, n] = rest;
    const local = newLocal();
    const docs = [];
    for (let i = 0; i < Number(n); i++) docs.push(resultDoc(i));
    for (let i = 0; i < docs.length; i += 1000) await local.bulkDocs(docs.slice(i, i + 1000));
    out = await timed(() => PouchDB.replicate(local, remote(target), { batch_size: Number(batch) }));
  } else if (mode === 'r2r') {
    const [source, target, batch] = rest;
    out = await timed(() => PouchDB.replicate(remote(source), remote(target), { batch_size: Number(batch) }));
  } else if (mode === 'fieldday') {
    const [db, batch, n, photoBytes, deadlineS] = rest;
    const local = newLocal();
    const docs = [];
    for (let i = 0; i < Number(n); i++) {
      const doc = resultDoc(i);
      doc._attachments = {};
      for (const k of [0, 1]) {
        const data = crypto.randomBytes(Number(photoBytes));
        data.set([0xff, 0xd8, 0xff, 0xe0]);
        doc._attachments[`p${k}.jpg`] = { content_type: 'image/jpeg', data };
      }
      docs.push(doc);
    }
    await local.bulkDocs(docs);
    const deadline = Date.now() + Number(deadlineS) * 1000;
    let failures = 0;
    const retrying = async (fn) => {
      for (;;) {
        try {
          return await fn();
        } catch (err) {
          failures += 1;
          if (Date.now() > deadline) throw new Error(`did not finish before the deadline: ${err}`);
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
    };
    const t0 = process.hrtime.bigint();
    // The orders come down with PouchDB's defaults; the results go up `batch` at a time.
    const pulled = await retrying(() => PouchDB.replicate(remote(db), local));
    const pushed = await retrying(() => PouchDB.replicate(local, remote(db), { batch_size: Number(batch) }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    out = { docs_written: pulled.docs_written + pushed.docs_written, seconds, failures };
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((err) => { console.error(err); process.exit(1); });
