#!/usr/bin/env node
// Runs an ONNX model under ONNX Runtime (onnxruntime-node from the kiln cache) on .npy
// inputs, writes every output as DIR/<sanitized output name>.npy and optionally times it.
// Reference outputs and reference timings for kiln come from here.
//
// Usage: node scripts/ort_run.js MODEL.onnx --input NAME=FILE.npy [--input ...]
//          [--output-dir DIR] [--threads 2] [--iterations N] [--warmup W]
//          [--opt-level all|extended|basic|disabled] [--json]
//   --input FILE.npy without NAME= binds to the model's inputs in order.
//   With --iterations, timing {median_ms, min_ms, p90_ms, ...} is printed as JSON on
//   stdout; --json prints a full description (inputs, outputs, files, timing) instead.
// ORT is loaded from $KILN_ORT_NODE or ${KILN_CACHE:-~/.cache/kiln}/ort/node_modules/onnxruntime-node.
// Also usable as a module: require('./ort_run.js').{readNpy, writeNpy}.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

// ---------------------------------------------------------------------------------------
// .npy (v1.0 written; v1/v2/v3 read), C order, little endian
const DTYPES = {
  // descr (without byte order) -> [ORT type, TypedArray]
  f4: ['float32', Float32Array], f8: ['float64', Float64Array], f2: ['float16', Uint16Array],
  i8: ['int64', BigInt64Array], i4: ['int32', Int32Array], i2: ['int16', Int16Array],
  i1: ['int8', Int8Array], u8: ['uint64', BigUint64Array], u4: ['uint32', Uint32Array],
  u2: ['uint16', Uint16Array], u1: ['uint8', Uint8Array], b1: ['bool', Uint8Array],
};
const ORT_TO_DESCR = {};
for (const [d, [t]] of Object.entries(DTYPES)) ORT_TO_DESCR[t] = d;

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY')
    throw new Error(`${file}: not a .npy file`);
  const major = buf.readUInt8(6);
  let hlen, hstart;
  if (major === 1) { hlen = buf.readUInt16LE(8); hstart = 10; }
  else if (major === 2 || major === 3) { hlen = buf.readUInt32LE(8); hstart = 12; }
  else throw new Error(`${file}: unsupported .npy version ${major}`);
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: bad header ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: fortran_order arrays are not supported`);
  const d = descr[1];
  const order = d[0], code = d.slice(1);
  if (!DTYPES[code]) throw new Error(`${file}: unsupported dtype ${d}`);
  if (order === '>' && !['i1', 'u1', 'b1'].includes(code))
    throw new Error(`${file}: big-endian data not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const [type, Arr] = DTYPES[code];
  const count = dims.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  const nbytes = count * Arr.BYTES_PER_ELEMENT;
  if (buf.length - off < nbytes) throw new Error(`${file}: truncated data`);
  // Copy into a fresh, aligned ArrayBuffer.
  const ab = new ArrayBuffer(nbytes);
  new Uint8Array(ab).set(buf.subarray(off, off + nbytes));
  return { type, dims, data: new Arr(ab) };
}

function writeNpy(file, type, dims, data) {
  const code = ORT_TO_DESCR[type];
  if (!code) throw new Error(`cannot write tensor of type ${type} to .npy`);
  const order = ['i1', 'u1', 'b1'].includes(code) ? '|' : '<';
  const shapeStr = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.writeUInt8(0x93, 0);
  pre.write('NUMPY', 1, 'latin1');
  pre.writeUInt8(1, 6);
  pre.writeUInt8(0, 7);
  pre.writeUInt16LE(header.length, 8);
  let body;
  if (type === 'bool' && !(data instanceof Uint8Array)) body = Buffer.from(Uint8Array.from(data, (v) => (v ? 1 : 0)));
  else body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

function sanitize(name) {
  const s = name.replace(/[^A-Za-z0-9._-]/g, '_');
  return s.length ? s : 'output';
}

// ---------------------------------------------------------------------------------------
function usage(msg) {
  if (msg) process.stderr.write(`ort_run: ${msg}\n`);
  process.stderr.write('usage: node scripts/ort_run.js MODEL.onnx --input NAME=FILE.npy ... ' +
    '[--output-dir DIR] [--threads 2] [--iterations N --warmup W] [--opt-level all] [--json]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { model: null, inputs: [], outDir: null, threads: 2, iterations: 0, warmup: 3,
              optLevel: 'all', json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${k} needs a value`); return argv[++i]; };
    if (k === '--input' || k === '-i') a.inputs.push(val());
    else if (k === '--output-dir' || k === '-o') a.outDir = val();
    else if (k === '--threads') a.threads = parseInt(val(), 10);
    else if (k === '--iterations') a.iterations = parseInt(val(), 10);
    else if (k === '--warmup') a.warmup = parseInt(val(), 10);
    else if (k === '--opt-level') a.optLevel = val();
    else if (k === '--json') a.json = true;
    else if (k === '-h' || k === '--help') usage();
    else if (k.startsWith('-')) usage(`unknown option ${k}`);
    else if (!a.model) a.model = k;
    else usage(`unexpected argument ${k}`);
  }
  if (!a.model) usage('no model given');
  return a;
}

function loadOrt() {
  const cache = process.env.KILN_CACHE || path.join(os.homedir(), '.cache', 'kiln');
  const dir = process.env.KILN_ORT_NODE || path.join(cache, 'ort', 'node_modules', 'onnxruntime-node');
  try {
    return require(dir);
  } catch (e) {
    process.stderr.write(`ort_run: cannot load onnxruntime-node from ${dir} ` +
      `(run scripts/install-deps.sh): ${e.message}\n`);
    process.exit(1);
  }
}

function stats(times) {
  const s = [...times].sort((x, y) => x - y);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const r = (x) => Math.round(x * 1000) / 1000;
  return { median_ms: r(med), min_ms: r(s[0]), p90_ms: r(q(0.9)), max_ms: r(s[s.length - 1]),
           mean_ms: r(s.reduce((x, y) => x + y, 0) / s.length) };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, {
    intraOpNumThreads: args.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: args.optLevel,
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const feeds = {};
  const inputsInfo = {};
  let positional = 0;
  for (const spec of args.inputs) {
    let name, file;
    const eq = spec.indexOf('=');
    if (eq > 0 && !fs.existsSync(spec)) { name = spec.slice(0, eq); file = spec.slice(eq + 1); }
    else { name = session.inputNames[positional++]; file = spec; }
    if (!session.inputNames.includes(name))
      usage(`model has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
    const t = readNpy(file);
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    inputsInfo[name] = { file, type: t.type, dims: t.dims };
  }
  const missing = session.inputNames.filter((n) => !(n in feeds));
  if (missing.length) usage(`missing inputs: ${missing.join(', ')}`);

  const t1 = process.hrtime.bigint();
  const results = await session.run(feeds);
  const firstRunMs = Number(process.hrtime.bigint() - t1) / 1e6;
  const outputsInfo = {};
  if (args.outDir) fs.mkdirSync(args.outDir, { recursive: true });
  for (const name of session.outputNames) {
    const t = results[name];
    const info = { type: t.type, dims: Array.from(t.dims) };
    if (args.outDir) {
      info.file = path.join(args.outDir, sanitize(name) + '.npy');
      writeNpy(info.file, t.type, info.dims, t.data);
    }
    outputsInfo[name] = info;
    if (!args.json)
      process.stderr.write(`[ort_run] ${name}: ${t.type} [${info.dims.join(', ')}]` +
        (info.file ? ` -> ${info.file}` : '') + '\n');
  }

  let timing = null;
  if (args.iterations > 0) {
    for (let i = 0; i < args.warmup; i++) await session.run(feeds);
    const times = [];
    for (let i = 0; i < args.iterations; i++) {
      const s = process.hrtime.bigint();
      await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    timing = { iterations: args.iterations, warmup: args.warmup, threads: args.threads,
               ...stats(times), samples_ms: times.map((t) => Math.round(t * 1000) / 1000) };
  }

  if (args.json) {
    const out = { model: args.model, ort_version: ort.env.versions ? ort.env.versions.common : undefined,
                  threads: args.threads, opt_level: args.optLevel,
                  load_ms: Math.round(loadMs * 1000) / 1000,
                  first_run_ms: Math.round(firstRunMs * 1000) / 1000,
                  inputs: inputsInfo, outputs: outputsInfo };
    if (timing) out.timing = timing;
    process.stdout.write(JSON.stringify(out, null, 1) + '\n');
  } else if (timing) {
    process.stdout.write(JSON.stringify(timing) + '\n');
  }
}

module.exports = { readNpy, writeNpy, sanitize };
if (require.main === module) {
  main().catch((e) => { process.stderr.write(`ort_run: ${e.stack || e}\n`); process.exit(1); });
}
