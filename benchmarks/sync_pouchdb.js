// PouchDB's own replicator (pouchdb-core 7.3.1 + http/memory adapters, as installed by pouchdb-server),
// timed for benchmarks/sync.py. Prints one JSON line: {"docs_written": n, "seconds": s}.
//   node sync_pouchdb.js pull <server> <user> <password> <sourceDb> <batchSize>         remote -> memory
//   node sync_pouchdb.js push <server> <user> <password> <targetDb> <batchSize> <n>     memory -> remote
//   node sync_pouchdb.js r2r  <server> <user> <password> <sourceDb> <targetDb> <batchSize>  remote -> remote
'use strict';
const PouchDB = require('pouchdb-core')
  .plugin(require('pouchdb-adapter-http'))
  .plugin(require('pouchdb-adapter-memory'))
  .plugin(require('pouchdb-replication'));

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
    const local = new PouchDB(`bench-${Date.now()}`, { adapter: 'memory' });
    out = await timed(() => PouchDB.replicate(remote(source), local, { batch_size: Number(batch) }));
  } else if (mode === 'push') {
    const [target, batch, n] = rest;
    const local = new PouchDB(`bench-${Date.now()}`, { adapter: 'memory' });
    const docs = [];
    for (let i = 0; i < Number(n); i++) docs.push(resultDoc(i));
    for (let i = 0; i < docs.length; i += 1000) await local.bulkDocs(docs.slice(i, i + 1000));
    out = await timed(() => PouchDB.replicate(local, remote(target), { batch_size: Number(batch) }));
  } else if (mode === 'r2r') {
    const [source, target, batch] = rest;
    out = await timed(() => PouchDB.replicate(remote(source), remote(target), { batch_size: Number(batch) }));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})().catch((err) => { console.error(err); process.exit(1); });
