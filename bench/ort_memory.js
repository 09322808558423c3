#!/usr/bin/env node
// ONNX Runtime's side of the engine memory comparison: the peak resident memory added by
// creating a session and running it, measured as flywheel bench --report-memory does (VmHWM,
// reset through /proc/self/clear_refs just before the load, minus VmRSS just before it).
//
//   node ort_memory.js MODEL --input NAME=FILE.npy ... [--runs 20] [--threads 1]
//
// Prints one JSON object: {"added_bytes": N, "rss_before_bytes": N, "peak_rss_bytes": N}.
const fs = require('fs'), path = require('path');
const peers = process.env.FLYWHEEL_PEERS_DIR || path.join(require('os').homedir(), '.cache/flywheel-peers');
const ort = require(path.join(peers, 'node_modules/onnxruntime-node'));

const args = process.argv.slice(2);
const opt = { runs: '20', threads: '1', input: [] };
let model;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--input') opt.input.push(args[++i]);
  else if (args[i].startsWith('--')) opt[args[i].slice(2)] = args[++i];
  else model = args[i];
}
if (!model) { console.error('usage: ort_memory.js MODEL --input NAME=FILE.npy ...'); process.exit(2); }

const types = { '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
                '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array] };
function readNpy(file) {
  const buf = fs.readFileSync(file);
  const hlen = buf.readUInt16LE(8), header = buf.slice(10, 10 + hlen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter(s => s.trim()).map(Number);
  if (!types[descr]) throw new Error(`${file}: unsupported dtype ${descr}`);
  const [type, T] = types[descr];
  const body = buf.slice(10 + hlen);
  return new ort.Tensor(type, new T(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)), shape);
}
const status = key => Number(new RegExp(key + ':\\s+(\\d+)').exec(
    fs.readFileSync('/proc/self/status', 'latin1'))[1]) * 1024;

(async () => {
  const feeds = {};
  for (const spec of opt.input) {
    const eq = spec.indexOf('=');
    feeds[spec.slice(0, eq)] = readNpy(spec.slice(eq + 1));
  }
  const before = status('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');  // resets VmHWM to the current RSS
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(opt.threads), executionMode: 'sequential', graphOptimizationLevel: 'all' });
  for (let i = 0; i < Number(opt.runs); i++) await session.run(feeds);
  const peak = status('VmHWM');
  console.log(JSON.stringify({ added_bytes: peak - before, rss_before_bytes: before, peak_rss_bytes: peak }));
})().catch(e => { console.error(e.message); process.exit(1); });
