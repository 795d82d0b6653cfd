import { describe, expect, it } from 'vitest';
import { parseSoakArgs, soakStore, UsageError } from './args.ts';

describe('parseSoakArgs', () => {
  it('runs 10 minutes by default', () => {
    expect(parseSoakArgs([])).toEqual({ minutes: 10 });
  });

  it('takes --minutes N, --minutes=N and fractions, past a `--`', () => {
    expect(parseSoakArgs(['--minutes', '1'])).toEqual({ minutes: 1 });
    expect(parseSoakArgs(['--minutes=0.5'])).toEqual({ minutes: 0.5 });
    expect(parseSoakArgs(['--', '--minutes', '2.5'])).toEqual({ minutes: 2.5 });
  });

  it.each([
    [['--minutes']],
    [['--minutes', '']],
    [['--minutes', 'ten']],
    [['--minutes', '0']],
    [['--minutes', '-1']],
    [['--minutes', '0.1']],
    [['--minutes', '2000']],
    [['--minutes', 'Infinity']],
    [['--seconds', '10']],
    [['10']],
  ])('refuses %j with a reason', (argv) => {
    expect(() => parseSoakArgs(argv)).toThrow(UsageError);
  });
});

describe('soakStore', () => {
  it("is the server's default kind, SQLite (in a folder of the soak's), when SIGNET_STORE is unset", () => {
    expect(soakStore(undefined)).toEqual({ kind: 'sqlite' });
    expect(soakStore('')).toEqual({ kind: 'sqlite' });
  });

  it('reads the store URLs that the server reads', () => {
    expect(soakStore('memory:')).toEqual({ kind: 'memory' });
    expect(soakStore('sqlite:/tmp/x.db')).toEqual({ kind: 'sqlite', path: '/tmp/x.db' });
    expect(soakStore('redis://127.0.0.1:6379')).toEqual({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379',
    });
  });

  it('refuses anything else', () => {
    expect(() => soakStore('sqlite:')).toThrow(UsageError);
    expect(() => soakStore('postgres://db')).toThrow(/SIGNET_STORE must be/);
  });
});
