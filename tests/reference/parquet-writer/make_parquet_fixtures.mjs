// Writes the parquet fixtures of tests/fixtures/tokens/parquet/ with an independent writer
// (parquet-wasm = the Rust `parquet` crate compiled to WebAssembly; arrays built with
// apache-arrow JS), plus expected.json holding the token lists each file must decode to.
// Run: cd tests/reference/parquet-writer && npm ci && node make_parquet_fixtures.mjs
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Field, Int32, Int64, List, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import pq from "parquet-wasm/node";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "fixtures", "tokens", "parquet");

// A small LCG so the documents are the same on every machine and every run.
let state = 12345;
function rand() {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32;
}

// `count` documents of 0..maxLen tokens; ids are Zipf-like (small ids common) so dictionaries
// stay small, with an occasional BOS (1) inside and, for int64, a few ids above 2^32.
function makeDocs(count, maxLen, { wide = false, nullRows = [], nullItems = [] } = {}) {
  const docs = [];
  for (let d = 0; d < count; ++d) {
    if (nullRows.includes(d)) {
      docs.push(null);
      continue;
    }
    const len = d % 7 === 3 ? 0 : 1 + Math.floor(rand() * maxLen);
    const doc = [];
    for (let i = 0; i < len; ++i) {
      let id = Math.floor(Math.pow(rand(), 3) * 48262);
      if (i === 0 && d % 2 === 0) id = 1;
      if (wide && rand() < 0.02) id = 5_000_000_000 + Math.floor(rand() * 1000);
      doc.push(id);
    }
    if (nullItems.includes(d) && doc.length > 1) doc[1] = null;
    docs.push(doc);
  }
  return docs;
}

function listVector(docs, { int32 = false, nullable = true, itemName = "item" } = {}) {
  const item = new Field(itemName, int32 ? new Int32() : new Int64(), nullable);
  const values = docs.map((doc) =>
    doc === null ? null : doc.map((v) => (v === null ? null : int32 ? v : BigInt(v))),
  );
  return vectorFromArray(values, new List(item));
}

function write(name, columns, props) {
  const table = new Table(columns);
  const wasmTable = pq.Table.fromIPCStream(tableToIPC(table, "stream"));
  let builder = new pq.WriterPropertiesBuilder()
    .setCompression(props.codec)
    .setDictionaryEnabled(props.dictionary)
    .setWriterVersion(props.v2 ? pq.WriterVersion.V2 : pq.WriterVersion.V1)
    .setMaxRowGroupSize(props.rowGroup ?? 1 << 20)
    .setDataPageSizeLimit(props.pageBytes ?? 1 << 20)
    .setWriteBatchSize(props.batch ?? 1024);
  // Without a dictionary, v2 would pick DELTA_BINARY_PACKED for integers: ask for PLAIN.
  if (!props.dictionary) builder = builder.setEncoding(pq.Encoding.PLAIN);
  const bytes = pq.writeParquet(wasmTable, builder.build());
  const path = join(out, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return bytes.length;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const C = pq.Compression;
const expected = { generator: "parquet-wasm 0.8.0 + apache-arrow 17", files: {} };

function tokenFile(name, docs, props, opts = {}) {
  const column = opts.column ?? "tokens";
  const columns = { [column]: listVector(docs, opts) };
  if (opts.extra) Object.assign(columns, opts.extra);
  const size = write(name, columns, props);
  expected.files[name] = {
    column,
    codec: props.codecName,
    dictionary: props.dictionary,
    page_version: props.v2 ? 2 : 1,
    row_group_rows: props.rowGroup ?? null,
    int32: !!opts.int32,
    bytes: size,
    docs,
  };
}

tokenFile("plain_uncompressed_v1_int64.parquet", makeDocs(40, 60, { wide: true }), {
  codec: C.UNCOMPRESSED, codecName: "UNCOMPRESSED", dictionary: false, v2: false,
  rowGroup: 16, pageBytes: 256, batch: 16,
});
tokenFile("dict_snappy_v1_int64.parquet", makeDocs(40, 80, { nullRows: [5, 17] }), {
  codec: C.SNAPPY, codecName: "SNAPPY", dictionary: true, v2: false, rowGroup: 12,
  pageBytes: 128, batch: 32,
});
tokenFile("dict_zstd_v2_int64.parquet", makeDocs(40, 80, { wide: true, nullRows: [0] }), {
  codec: C.ZSTD, codecName: "ZSTD", dictionary: true, v2: true, rowGroup: 15, pageBytes: 200,
  batch: 20,
});
tokenFile("plain_gzip_v2_int32.parquet", makeDocs(30, 70), {
  codec: C.GZIP, codecName: "GZIP", dictionary: false, v2: true, rowGroup: 10, pageBytes: 150,
  batch: 25,
}, { int32: true, nullable: false, itemName: "element" });
tokenFile("dict_gzip_v1_int32.parquet", makeDocs(30, 50, { nullRows: [29] }), {
  codec: C.GZIP, codecName: "GZIP", dictionary: true, v2: false,
}, { int32: true });
tokenFile("plain_snappy_v2_int64.parquet", makeDocs(25, 90, { wide: true }), {
  codec: C.SNAPPY, codecName: "SNAPPY", dictionary: false, v2: true, rowGroup: 9,
  pageBytes: 300, batch: 30,
});
tokenFile("dict_uncompressed_v2_int32.parquet", makeDocs(20, 40), {
  codec: C.UNCOMPRESSED, codecName: "UNCOMPRESSED", dictionary: true, v2: true, rowGroup: 7,
}, { int32: true });
tokenFile("plain_zstd_v1_int64.parquet", makeDocs(20, 40), {
  codec: C.ZSTD, codecName: "ZSTD", dictionary: false, v2: false, rowGroup: 8, pageBytes: 100,
  batch: 10,
});

// input_ids, next to other columns the reader must skip.
{
  const docs = makeDocs(12, 30);
  tokenFile("input_ids_with_other_columns.parquet", docs, {
    codec: C.SNAPPY, codecName: "SNAPPY", dictionary: true, v2: false, rowGroup: 5,
  }, {
    column: "input_ids",
    extra: {
      attention_mask: listVector(docs.map((d) => (d === null ? null : d.map(() => 1))), {
        int32: true,
      }),
      id: vectorFromArray(docs.map((_, i) => `doc-${i}`), new Utf8()),
    },
  });
}

// A null inside a token list: the reader must refuse it (row 4 here).
tokenFile("null_item.parquet", makeDocs(8, 20, { nullItems: [4] }), {
  codec: C.UNCOMPRESSED, codecName: "UNCOMPRESSED", dictionary: false, v2: false,
});
expected.files["null_item.parquet"].error_row = 4;

// A text dataset: must be reported as needing tokenisation.
write("text_only.parquet", {
  text: vectorFromArray(["Hello world", "A second document", "third"], new Utf8()),
}, { codec: C.SNAPPY, dictionary: true, v2: false });

// A folder of shards, read in name order (written in the other order on purpose).
{
  const a = makeDocs(10, 30);
  const b = makeDocs(10, 30);
  const props = { codec: C.SNAPPY, codecName: "SNAPPY", dictionary: true, v2: false, rowGroup: 4 };
  tokenFile("shards/data/train-00001-of-00002.parquet", b, props);
  tokenFile("shards/data/train-00000-of-00002.parquet", a, props);
}

const json = JSON.stringify(expected, (k, v) => (typeof v === "bigint" ? Number(v) : v));
writeFileSync(join(out, "expected.json"), json + "\n");
let total = 0;
for (const f of Object.values(expected.files)) total += f.bytes;
console.log(`wrote ${Object.keys(expected.files).length + 1} files, ${total} bytes of parquet`);
