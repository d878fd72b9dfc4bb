/** Every option of every command also reads from `PYEDGE_<OPTION>` (e.g. --public-url ← PYEDGE_PUBLIC_URL). */
import type { Command } from 'commander';

export function envVarFor(longFlag: string): string {
  return 'PYEDGE_' + longFlag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

/** Attach the environment variable to each option of `cmd` and its subcommands. */
export function withEnvOptions(cmd: Command): Command {
  for (const option of cmd.options) {
    if (option.long && option.long !== '--help' && option.long !== '--version' && !option.envVar) {
      option.env(envVarFor(option.long));
    }
  }
  for (const sub of cmd.commands) withEnvOptions(sub);
  return cmd;
}
