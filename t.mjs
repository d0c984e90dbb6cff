import { DuckDBInstance, DOUBLE, DuckDBDataChunk } from '@duckdb/node-api';
const inst = await DuckDBInstance.create(':memory:');
const c = await inst.connect();
await c.run(`create table base as select i::double as x, i*2.0 as x2, i%7 as x3, (i%13)::double x4, 'str'||i s from range(1000000) t(i)`);
let t0=Date.now();
await c.run(`create temp table src as select * from base`);
console.log('materialize', Date.now()-t0);
await c.run(`create temp table dst(y double)`);
const app = await c.createAppender('dst', 'main', 'temp');
const B=65536; let n=0; t0=Date.now(); let sum=0;
for (let a=0;;a+=B) {
  const r = await c.run(`select x::DOUBLE, x2::DOUBLE, x3::DOUBLE, x4::DOUBLE from src where rowid >= ${a} and rowid < ${a+B}`);
  if (r.rowCount===0) break;
  const chunks = r.chunks ?? [];
  for (let ci=0; ci<r.chunkCount; ci++) { const ch=r.getChunk(ci);
    const v = ch.getColumnVector(0); const out = DuckDBDataChunk.create([DOUBLE], ch.rowCount);
    const ov = out.getColumnVector(0);
    for (let i=0;i<ch.rowCount;i++) ov.setItem(i, v.getItem(i)*2);
    ov.flush(); app.appendDataChunk(out); n+=ch.rowCount; }
}
app.flushSync(); app.closeSync();
console.log('ranges', n, Date.now()-t0);
t0=Date.now();
const r2 = await c.runAndReadAll(`select count(*), sum(y), sum(x) from (select * from src positional join dst)`);
console.log('zip', Date.now()-t0, r2.getRows());
