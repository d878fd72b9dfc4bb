/** Every option of every command also reads from `PYEDGE_<OPTION>` (e.g. --public-url ← PYEDGE_PUBLIC_URL). */
import { Option } from 'commander';

export function envVarFor(longFlag: string): string {
  return 'PYEDGE_' + longFlag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

/** An option that also reads its value from `PYEDGE_<OPTION>`. */
export function envOption(flags: string, description: string, defaultValue?: string): Option {
  const option = new Option(flags, description);
  if (defaultValue !== undefined) option.default(defaultValue);
  if (option.long) option.env(envVarFor(option.long));
  return option;
}
