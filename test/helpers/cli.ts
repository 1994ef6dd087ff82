import { cli } from '../../src/cli/main';

/**
 * Runs `pact <args>` in this process and returns what it printed on stdout (stderr, when `stderr` is given, is
 * collected there instead of being dropped).
 */
export async function pact(args: string[], stderr?: string[]): Promise<string> {
  const program = cli();
  for (const command of [program, ...program.commands]) {
    command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  }
  const out: string[] = [];
  const { write: realOut } = process.stdout;
  const { write: realErr } = process.stderr;
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => {
    stderr?.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
  }
  return out.join('');
}
