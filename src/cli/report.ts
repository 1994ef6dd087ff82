/**
 * `pact report`: a run's metrics (RUN/metrics.jsonl) as a Markdown report (RUN/report.md, its charts as SVG files
 * in RUN/report/) and a self-contained HTML report (RUN/report.html, the same charts inline). The charts are line
 * charts over training steps: the training loss and accuracy (raw, and a moving average), the learning rate, the
 * training FLOPs fraction of adaptive models, and the test metrics of every evaluation mode. `pact train` writes the
 * report when it finishes; ponder maps in RUN/maps (from `pact maps --out RUN/maps`) are shown too.
 *
 * The SVG is written here: a few axes and polylines, which do not need a charting library.
 */
import * as fs from 'fs';
import * as path from 'path';

import { writeFileAtomically } from '../train/checkpoint';

/** One line of metrics.jsonl: the step, the split, and numbers (config-free). */
export interface MetricRow {
  step: number;
  split: string;
  [key: string]: number | string;
}

/** The rows of `file`; a line that is not a JSON object with a numeric step and a split is an Error naming it. */
export function readMetrics(file: string): MetricRow[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: no metrics file (run \`pact train --run DIR\` first)`);
  const rows: MetricRow[] = [];
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        throw new Error(`${file}:${i + 1}: not JSON: ${line.slice(0, 80)}`);
      }
      const r = row as Partial<MetricRow> | null;
      if (r === null || typeof r !== 'object' || typeof r.step !== 'number' || typeof r.split !== 'string') {
        throw new Error(`${file}:${i + 1}: expected an object with a numeric "step" and a "split"`);
      }
      rows.push(r as MetricRow);
    });
  return rows;
}

export interface Series {
  name: string;
  points: [number, number][];
  /** Drawn thin and light (raw values behind their moving average). */
  faint?: boolean;
}

export interface Chart {
  /** File stem of the chart's SVG. */
  id: string;
  title: string;
  yLabel: string;
  series: Series[];
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const WIDTH = 640;
const HEIGHT = 320;
const MARGIN = { left: 64, right: 150, top: 32, bottom: 44 };

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) as number;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function formatTick(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

/** A line chart as a standalone SVG document. */
export function lineChartSvg(chart: Chart): string {
  const all = chart.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
      `font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="20" font-size="14" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
  if (all.length === 0) {
    out.push(`<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle">no data</text>`, '</svg>');
    return out.join('\n');
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.max(Math.abs(y0) * 0.1, 0.5), y1 + Math.max(Math.abs(y1) * 0.1, 0.5)];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  const bottom = MARGIN.top + plotH;
  for (const t of niceTicks(y0, y1)) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" ` +
        `stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${formatTick(t)}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1)) {
    out.push(
      `<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${bottom}" y2="${bottom + 4}" stroke="#333"/>`,
      `<text x="${sx(t).toFixed(1)}" y="${bottom + 18}" text-anchor="middle">${formatTick(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">step</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">` +
      `${escapeXml(chart.yLabel)}</text>`,
  );
  let legend = 0;
  chart.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const attrs = s.faint ? `stroke-width="1" stroke-opacity="0.3"` : `stroke-width="2"`;
    const coords = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${colour}" ${attrs} points="${coords}"/>`);
    if (pts.length === 1) {
      out.push(`<circle cx="${sx(pts[0][0]).toFixed(1)}" cy="${sy(pts[0][1]).toFixed(1)}" r="3" fill="${colour}"/>`);
    }
    if (s.faint) return;
    const ly = MARGIN.top + 12 + legend++ * 18;
    const lx = MARGIN.left + plotW + 10;
    out.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${lx + 24}" y="${ly}">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Trailing moving average over `window` points (fewer at the start). */
export function movingAverage(points: [number, number][], window: number): [number, number][] {
  let sum = 0;
  return points.map(([x, y], i) => {
    sum += y;
    if (i >= window) sum -= points[i - window][1];
    return [x, sum / Math.min(i + 1, window)];
  });
}

function seriesOf(rows: MetricRow[], key: string): [number, number][] {
  return rows.filter((r) => typeof r[key] === 'number').map((r) => [r.step, r[key] as number]);
}

/** Evaluation modes present in test rows: '' for a plain classifier (keys `loss`, `accuracy`). */
function testModes(test: MetricRow[]): string[] {
  const modes = new Set<string>();
  for (const r of test) {
    for (const k of Object.keys(r)) {
      const m = /^(.+)\.accuracy$/.exec(k);
      if (m) modes.add(m[1]);
      else if (k === 'accuracy') modes.add('');
    }
  }
  return [...modes];
}

const key = (mode: string, metric: string) => (mode === '' ? metric : `${mode}.${metric}`);

/** The charts of a run's rows. */
export function reportCharts(rows: MetricRow[]): Chart[] {
  const train = rows.filter((r) => r.split === 'train');
  const test = rows.filter((r) => r.split === 'test');
  const window = Math.max(1, Math.round(train.length / 40));
  const trainChart = (id: string, title: string, metric: string, yLabel: string): Chart | null => {
    const raw = seriesOf(train, metric);
    if (raw.length === 0) return null;
    const series: Series[] = [{ name: 'train (raw)', points: raw, faint: true }];
    series.push({ name: `moving avg (${window})`, points: movingAverage(raw, window) });
    return { id, title, yLabel, series };
  };
  const modes = testModes(test);
  const testChart = (id: string, title: string, metric: string, yLabel: string): Chart | null => {
    const series = modes
      .map((m) => ({ name: m === '' ? 'test' : m, points: seriesOf(test, key(m, metric)) }))
      .filter((s) => s.points.length > 0);
    return series.length === 0 ? null : { id, title, yLabel, series };
  };
  const lossKey = train.some((r) => typeof r.crossEntropy === 'number') ? 'crossEntropy' : 'loss';
  return [
    trainChart('train-loss', 'Training cross-entropy', lossKey, 'cross-entropy'),
    trainChart('train-accuracy', 'Training accuracy', 'accuracy', 'accuracy'),
    trainChart('train-flops', 'Training FLOPs fraction (of the dense model)', 'flopsFraction', 'FLOPs fraction'),
    testChart('test-accuracy', 'Test accuracy', 'accuracy', 'accuracy'),
    testChart('test-loss', 'Test cross-entropy', 'loss', 'cross-entropy'),
    testChart('test-flops', 'Test FLOPs fraction', 'flopsFraction', 'FLOPs fraction'),
    {
      id: 'learning-rate',
      title: 'Learning rate',
      yLabel: 'learning rate',
      series: [{ name: 'lr', points: seriesOf(train, 'lr') }],
    },
  ].filter((c): c is Chart => c !== null && c.series.some((s) => s.points.length > 0));
}

// The trainer logs a NaN metric as null (JSON has no NaN): shown as NaN, not as '–' (not measured).
function fmt(v: unknown): string {
  if (v === null) return 'NaN';
  if (typeof v !== 'number') return v === undefined ? '–' : escapeXml(String(v));
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

/** Markdown table of the last test evaluation, a row per mode. */
function finalTable(rows: MetricRow[]): string[] {
  const test = rows.filter((r) => r.split === 'test');
  if (test.length === 0) return ['No test evaluation yet.'];
  const last = test[test.length - 1];
  const modes = testModes([last]);
  const metrics = ['accuracy', 'loss', 'flopsFraction', 'executedFlopsFraction', 'gflops', 'ponder'].filter((m) =>
    modes.some((mode) => typeof last[key(mode, m)] === 'number' || last[key(mode, m)] === null),
  );
  return [
    `Test evaluation at step ${last.step}:`,
    '',
    `| mode | ${metrics.join(' | ')} |`,
    `|---|${metrics.map(() => '---:').join('|')}|`,
    ...modes.map(
      (m) => `| ${m === '' ? 'dense' : escapeXml(m)} | ${metrics.map((k) => fmt(last[key(m, k)])).join(' | ')} |`,
    ),
  ];
}

export interface ReportFiles {
  markdown: string;
  html: string;
  charts: string[];
}

/**
 * Writes RUN/report.md (+ RUN/report/*.svg) and RUN/report.html from RUN/metrics.jsonl and RUN/config.json (if
 * present), and shows the PNG ponder maps in RUN/maps.
 */
export function writeReport(runDir: string): ReportFiles {
  const rows = readMetrics(path.join(runDir, 'metrics.jsonl'));
  const configFile = path.join(runDir, 'config.json');
  let config: object = {};
  if (fs.existsSync(configFile)) {
    try {
      config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as object;
    } catch (e) {
      throw new Error(`report: ${configFile}: not JSON (${(e as Error).message})`);
    }
  }
  const charts = reportCharts(rows);
  const chartDir = path.join(runDir, 'report');
  fs.mkdirSync(chartDir, { recursive: true });
  const svgs = charts.map((c) => lineChartSvg(c));
  const chartFiles = charts.map((c, i) => {
    const file = path.join(chartDir, `${c.id}.svg`);
    writeFileAtomically(file, svgs[i]);
    return file;
  });
  const mapsDir = path.join(runDir, 'maps');
  const maps = fs.existsSync(mapsDir)
    ? fs
        .readdirSync(mapsDir)
        .filter((f) => f.endsWith('.png'))
        .sort()
        .slice(0, 16)
    : [];
  const steps = rows.filter((r) => r.split === 'train').length;
  const title = `Run ${path.basename(path.resolve(runDir))}`;
  const configLines = Object.entries(config).map(([k, v]) => `| ${k} | ${escapeXml(JSON.stringify(v))} |`);
  const md = [
    `# ${title}`,
    '',
    `${steps} training steps logged. Written by \`pact report\` from \`metrics.jsonl\`.`,
    '',
    ...finalTable(rows),
    '',
    '## Charts',
    '',
    ...charts.map((c) => `![${c.title}](report/${c.id}.svg)\n`),
    ...(maps.length > 0
      ? ['## Ponder maps (input | units executed per position)', '', ...maps.map((f) => `![${f}](maps/${f})`), '']
      : []),
    '## Configuration',
    '',
    '| option | value |',
    '|---|---|',
    ...configLines,
    '',
  ].join('\n');
  const markdown = path.join(runDir, 'report.md');
  const html = path.join(runDir, 'report.html');
  writeFileAtomically(markdown, md);
  writeFileAtomically(html, toHtml(title, md, charts, svgs));
  return { markdown, html, charts: chartFiles };
}

/** The Markdown's tables and text as HTML, with the charts inline (one self-contained file). */
function toHtml(title: string, md: string, charts: Chart[], svgs: string[]): string {
  const body: string[] = [];
  let table: string[] | null = null;
  const flush = () => {
    if (table === null) return;
    const [head, , ...rest] = table;
    const cells = (line: string) =>
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
    body.push(
      '<table>',
      `<tr>${cells(head)
        .map((c) => `<th>${c}</th>`)
        .join('')}</tr>`,
      ...rest.map(
        (r) =>
          `<tr>${cells(r)
            .map((c) => `<td>${c}</td>`)
            .join('')}</tr>`,
      ),
      '</table>',
    );
    table = null;
  };
  for (const line of md.split('\n')) {
    if (line.startsWith('|')) {
      (table ??= []).push(line);
      continue;
    }
    flush();
    const image = /^!\[(.*)\]\((.*)\)$/.exec(line);
    if (line.startsWith('# ')) body.push(`<h1>${escapeXml(line.slice(2))}</h1>`);
    else if (line.startsWith('## ')) body.push(`<h2>${escapeXml(line.slice(3))}</h2>`);
    else if (image) {
      const i = charts.findIndex((c) => `report/${c.id}.svg` === image[2]);
      body.push(i >= 0 ? `<div>${svgs[i]}</div>` : `<img src="${escapeXml(image[2])}" alt="${escapeXml(image[1])}">`);
    } else if (line.trim() !== '') body.push(`<p>${escapeXml(line).replace(/`([^`]*)`/g, '<code>$1</code>')}</p>`);
  }
  flush();
  return [
    '<!DOCTYPE html>',
    '<html><head><meta charset="utf-8">',
    `<title>${escapeXml(title)}</title>`,
    '<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}table{border-collapse:collapse}' +
      'td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{margin:4px}</style>',
    '</head><body>',
    ...body,
    '</body></html>',
    '',
  ].join('\n');
}
