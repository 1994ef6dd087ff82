/**
 * Training progress: a live bar with loss, accuracy, images/s and ETA on a terminal; plain lines (one every
 * `plainEvery` steps, and at every evaluation and checkpoint) when output is not a TTY (CI logs, files).
 */
import { SingleBar } from 'cli-progress';

import type { ProgressEvent } from '../train/trainer';

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(4)}`)
    .join('  ');
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

export class TrainingProgress {
  private bar: SingleBar | null = null;
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEvery = 20,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  handle = (event: ProgressEvent): void => {
    if (event.kind === 'step') this.step(event);
    else if (event.kind === 'eval') this.line(`step ${event.step}  test  ${formatMetrics(event.metrics)}`);
    else this.line(`step ${event.step}  checkpoint written to ${event.file}`);
  };

  private step(event: Extract<ProgressEvent, { kind: 'step' }>): void {
    const { step, totalSteps, metrics, examplesPerSecond, stepsPerSecond } = event;
    const summary = `${formatMetrics(metrics)}  ${examplesPerSecond.toFixed(0)} img/s`;
    if (!this.tty) {
      if (step % this.plainEvery === 0 || step === totalSteps) {
        const eta = stepsPerSecond > 0 ? formatSeconds((totalSteps - step) / stepsPerSecond) : '?';
        this.line(`step ${step}/${totalSteps}  ${summary}  eta ${eta}`);
      }
      return;
    }
    if (this.bar === null) {
      this.bar = new SingleBar({
        format: 'train |{bar}| {value}/{total} {summary} | ETA {eta_formatted}',
        hideCursor: true,
        stream: this.stream,
        etaBuffer: 50,
      });
      this.bar.start(totalSteps, step - 1, { summary });
    }
    this.bar.update(step, { summary });
    if (step === totalSteps) this.stop();
  }

  private line(text: string): void {
    if (this.bar !== null) {
      this.bar.stop();
      this.bar = null;
    }
    this.stream.write(`${text}\n`);
  }

  stop(): void {
    if (this.bar !== null) {
      this.bar.stop();
      this.bar = null;
    }
  }
}
