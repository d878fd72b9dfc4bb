/** `pyedge key`: the ed25519 key that signs published pages. */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { envOption } from './env-options.js';
import { PyedgeError } from '../core/errors.js';
import { keyPathIn, loadServerKey, rotateServerKey } from '../signing/key-file.js';

interface KeyOptions {
  readonly data?: string;
  readonly keyFile?: string;
}

function keyPath(options: KeyOptions): string {
  if (options.keyFile) return resolve(options.keyFile);
  if (options.data) return keyPathIn(resolve(options.data));
  throw new PyedgeError('PYEDGE_CONFIG', 'Give --data DIR (the key lives in DIR/keys/) or --key-file PATH.');
}

function withKeyOptions(cmd: Command): Command {
  return cmd
    .addOption(envOption('--data <dir>', 'data folder whose keys/server-key.pem to use'))
    .addOption(envOption('--key-file <path>', 'key file to use instead'));
}

export function keyCommand(): Command {
  const key = new Command('key').description('manage the ed25519 key that signs pages (served as /serverkey)');
  withKeyOptions(key.command('generate').description('create the key if there is none; print its public half')).action(async (o: KeyOptions) => {
    const k = await loadServerKey(keyPath(o), { create: true });
    process.stdout.write(`key ${k.id}\n${k.publicPem}`);
  });
  withKeyOptions(key.command('show').description('print the public key and its id')).action(async (o: KeyOptions) => {
    const k = await loadServerKey(keyPath(o), { create: false });
    process.stdout.write(`key ${k.id}\n${k.publicPem}`);
  });
  withKeyOptions(key.command('rotate').description('replace the key; the old one is kept as a .retired file')).action(async (o: KeyOptions) => {
    const { previous, current } = await rotateServerKey(keyPath(o));
    process.stdout.write(`${previous ? `retired key ${previous.id}\n` : ''}key ${current.id}\n${current.publicPem}`);
  });
  return key;
}
