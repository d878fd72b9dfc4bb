/**
 * Test fixtures: documentation zips, good and hostile, built at test time with
 * Python's zipfile (an independent implementation of the format).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** One entry of a test zip. Exactly one of text, zeros, random gives its content (default empty). */
export interface ZipEntrySpec {
  readonly name: string;
  readonly text?: string;
  /** This many zero bytes (a zip bomb compresses them to almost nothing). */
  readonly zeros?: number;
  /** This many random (incompressible) bytes. */
  readonly random?: number;
  /** Raw external attributes, e.g. SYMLINK_ATTR. */
  readonly externalAttr?: number;
  readonly stored?: boolean;
  /** Rewrite the headers to declare this uncompressed size (a zip that lies). */
  readonly declareSize?: number;
}

const BUILD = String.raw`
import json, os, struct, sys, zipfile
out, entries = sys.argv[1], json.loads(sys.stdin.read())
with zipfile.ZipFile(out, 'w') as zf:
    for e in entries:
        info = zipfile.ZipInfo(e['name'], date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED if e.get('stored') else zipfile.ZIP_DEFLATED
        if 'externalAttr' in e:
            info.external_attr = e['externalAttr']
        elif e['name'].endswith('/'):
            info.external_attr = (0o40755 << 16) | 0x10
        else:
            info.external_attr = 0o100644 << 16
        if 'zeros' in e:
            data = bytes(e['zeros'])
        elif 'random' in e:
            data = os.urandom(e['random'])
        else:
            data = e.get('text', '').encode('utf-8')
        zf.writestr(info, data)
lies = [(e['name'].encode('utf-8'), e['declareSize']) for e in entries if 'declareSize' in e]
if lies:
    b = bytearray(open(out, 'rb').read())
    for name, size in lies:
        # Central directory header: size at +24, name at +46. Local header: size at +22, name at +30.
        for sig, size_at, name_at in ((b'PK\x01\x02', 24, 46), (b'PK\x03\x04', 22, 30)):
            i = b.find(sig)
            while i >= 0:
                if b[i + name_at:i + name_at + len(name)] == name:
                    struct.pack_into('<I', b, i + size_at, size)
                i = b.find(sig, i + 4)
    open(out, 'wb').write(bytes(b))
`;

/** Write a zip with these entries to `out`. */
export async function buildZip(out: string, entries: readonly ZipEntrySpec[]): Promise<string> {
  const child = execFileAsync('python3', ['-c', BUILD, out], { maxBuffer: 1024 * 1024 });
  child.child.stdin!.end(JSON.stringify(entries));
  await child;
  return out;
}

/** The unix mode bits Python writes for a symbolic link entry. */
export const SYMLINK_ATTR = 0o120777 * 0x10000;
