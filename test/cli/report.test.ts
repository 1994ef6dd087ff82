/**
 * The run report's pieces: metrics parsing (corrupt lines name the file and line), tick placement, the moving
 * average against a direct computation, and the SVG's polyline through every point in range.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { lineChartSvg, movingAverage, niceTicks, readMetrics, reportCharts, writeReport } from '../../src/cli/report';
import { freshRng } from '../helpers/random';

describe('run report', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pact-report-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads metrics.jsonl and names the file and line of a corrupt row', () => {
    const file = path.join(dir, 'metrics.jsonl');
    fs.writeFileSync(file, '{"step":1,"split":"train","loss":2}\n\n{"step":2,"split":"test","accuracy":0.5}\n');
    assert.deepEqual(readMetrics(file), [
      { step: 1, split: 'train', loss: 2 },
      { step: 2, split: 'test', accuracy: 0.5 },
    ]);
    fs.appendFileSync(file, '{"step":3,"split":"tr');
    assert.throws(() => readMetrics(file), new RegExp(`${file.replace(/[/\\\\.]/g, '\\$&')}:4: not JSON`));
    fs.writeFileSync(file, '{"split":"train"}\n');
    assert.throws(() => readMetrics(file), /:1: expected an object with a numeric "step"/);
    assert.throws(() => readMetrics(path.join(dir, 'none.jsonl')), /none.jsonl: no metrics file/);
  });

  it('places round ticks covering the range', () => {
    const rng = freshRng();
    for (let t = 0; t < 100; ++t) {
      // Ranges of any scale, their offset from 0 at most 1000 widths (metrics, not float-precision limits).
      const width = rng.uniform(1, 1, 10)[0] * 10 ** rng.int(-4, 3);
      const lo = rng.uniform(1, -1000, 1000)[0] * width;
      const hi = lo + width;
      const ticks = niceTicks(lo, hi);
      assert.ok(ticks.length >= 2 && ticks.length <= 11, `seed ${rng.seed}: ${ticks.length} ticks for [${lo}, ${hi}]`);
      const step = ticks[1] - ticks[0];
      assert.ok(ticks[0] >= lo - step * 1e-6 && ticks[0] < lo + step, `seed ${rng.seed}: first tick ${ticks[0]}`);
      const mantissa = step / 10 ** Math.floor(Math.log10(step));
      assert.ok(
        [1, 2, 2.5, 5, 10].some((m) => Math.abs(mantissa - m) < 1e-6),
        `seed ${rng.seed}: step ${step}`,
      );
    }
  });

  it('averages the trailing window', () => {
    const rng = freshRng();
    const points: [number, number][] = Array.from({ length: 50 }, (_, i) => [i, rng.uniform(1, -1, 1)[0]]);
    const window = rng.int(1, 10);
    movingAverage(points, window).forEach(([x, y], i) => {
      const tail = points.slice(Math.max(0, i - window + 1), i + 1).map((p) => p[1]);
      const expected = tail.reduce((a, b) => a + b, 0) / tail.length;
      assert.equal(x, i);
      assert.ok(Math.abs(y - expected) < 1e-12, `seed ${rng.seed}: point ${i}: ${y} vs ${expected}`);
    });
  });

  it('draws a polyline through every point of each series, test modes as series', () => {
    const rows = [
      ...Array.from({ length: 30 }, (_, i) => ({ step: i + 1, split: 'train', crossEntropy: 2 - i / 20, lr: 0.1 })),
      { step: 15, split: 'test', 'relaxed.accuracy': 0.3, 'thresholded.accuracy': 0.25 },
      { step: 30, split: 'test', 'relaxed.accuracy': 0.6, 'thresholded.accuracy': 0.55 },
    ];
    const charts = reportCharts(rows);
    const accuracy = charts.find((c) => c.id === 'test-accuracy');
    assert.deepEqual(
      accuracy?.series.map((s) => s.name),
      ['relaxed', 'thresholded'],
    );
    const loss = charts.find((c) => c.id === 'train-loss');
    assert.ok(loss !== undefined);
    const svg = lineChartSvg(loss);
    const polylines = [...svg.matchAll(/points="([^"]*)"/g)].map((m) => m[1].split(' '));
    assert.deepEqual(
      polylines.map((p) => p.length),
      [30, 30],
    );
    for (const [x, y] of polylines.flat().map((p) => p.split(',').map(Number))) {
      assert.ok(x >= 0 && x <= 640 && y >= 0 && y <= 320, `point ${x},${y} outside the chart`);
    }
    assert.ok(!charts.some((c) => c.id === 'train-flops'), 'no FLOPs chart for a dense run');
  });

  it('shows a NaN metric (logged as null) as NaN, escapes metric names, and names a config.json that is not JSON', () => {
    const run = path.join(dir, 'nan');
    fs.mkdirSync(run, { recursive: true });
    const lines = [
      { step: 1, split: 'train', loss: 1 },
      { step: 1, split: 'test', 'a<b>.accuracy': null, 'a<b>.loss': null },
    ];
    fs.writeFileSync(path.join(run, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const md = fs.readFileSync(writeReport(run).markdown, 'utf8');
    assert.match(md, /\| mode \| accuracy \| loss \|/);
    assert.match(md, /\| a&lt;b&gt; \| NaN \| NaN \|/);
    assert.ok(!fs.readFileSync(path.join(run, 'report.html'), 'utf8').includes('<b>'), 'the mode name is escaped');
    fs.writeFileSync(path.join(run, 'config.json'), '{"model": ');
    assert.throws(() => writeReport(run), /report: .*config\.json: not JSON/);
  });
});
