/**
 * Page signatures at the proxy (DESIGN.md §7): the key comes from
 * `--server-key FILE`, or each upstream's `/serverkey` is trusted on first use
 * and pinned (in the cache, when there is one). With a key, every project page
 * must come with a `serversig` that verifies against its bytes, name and a
 * serial no older than one already seen; otherwise the page is refused like
 * any wrong answer.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { PyedgeError } from '../core/errors.js';
import { keyId, verifyPage, type ServerSig, type SignedFormat } from '../core/signing.js';
import type { ProxyCache } from './proxy-cache.js';
import type { SignatureMode, Timeouts } from './proxy-config.js';
import { UpstreamFailure, upstreamRequest } from './upstream-client.js';
import type { Upstream } from './upstream.js';

/** How often trust-on-first-use asks an upstream again after it published no key. */
const TOFU_RETRY_MS = 60_000;

function parseKey(pem: string): KeyObject | null {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : null;
  } catch {
    return null;
  }
}

export class PageSignatures {
  readonly mode: SignatureMode;
  readonly #cache: ProxyCache;
  readonly #logger: Logger;
  /** The key of `--server-key`: every upstream must sign with it. */
  #fixed: KeyObject | null = null;
  /** Keys trusted on first use, by upstream index root (each upstream may sign with its own key, like SSH host keys). */
  readonly #pinned = new Map<string, KeyObject>();
  readonly #lastAsked = new Map<string, number>();
  readonly #asking = new Map<string, Promise<void>>();

  constructor(mode: SignatureMode, cache: ProxyCache, logger: Logger) {
    this.mode = mode;
    this.#cache = cache;
    this.#logger = logger;
  }

  /** Load `--server-key`, or the keys pinned in the cache. */
  async init(keyFile: string | null): Promise<void> {
    if (this.mode === 'off') return;
    if (keyFile !== null) {
      const pem = await readFile(keyFile, 'utf8').catch((err: Error) => {
        throw new PyedgeError('PYEDGE_CONFIG', `Cannot read --server-key ${keyFile}: ${err.message}`, { key: 'server-key' });
      });
      const key = parseKey(pem);
      if (key === null) throw new PyedgeError('PYEDGE_CONFIG', `--server-key ${keyFile} is not an ed25519 public key in PEM form.`, { key: 'server-key' });
      this.#fixed = key;
      return;
    }
    for (const [root, pem] of Object.entries(await this.#cache.readKeys())) {
      const key = parseKey(pem);
      if (key !== null) this.#pinned.set(root, key);
    }
  }

  /** Key ids by upstream, for the status page. */
  keys(): Record<string, string> {
    if (this.#fixed !== null) return { '*': keyId(this.#fixed) };
    return Object.fromEntries([...this.#pinned].map(([root, key]) => [root, keyId(key)]));
  }

  get keySource(): string | null {
    return this.#fixed !== null ? 'file' : this.#pinned.size > 0 ? 'first-use' : null;
  }

  /** The key to check `upstream`'s pages with, trusting its `/serverkey` on first use; null: do not check. */
  async key(upstream: Upstream, timeouts: Timeouts): Promise<KeyObject | null> {
    if (this.mode === 'off') return null;
    if (this.#fixed !== null) return this.#fixed;
    const pinned = this.#pinned.get(upstream.root);
    if (pinned) return pinned;
    if (performance.now() - (this.#lastAsked.get(upstream.root) ?? -Infinity) >= TOFU_RETRY_MS) {
      let asking = this.#asking.get(upstream.root);
      if (!asking) {
        asking = this.#firstUse(upstream, timeouts).finally(() => this.#asking.delete(upstream.root));
        this.#asking.set(upstream.root, asking);
      }
      await asking;
    }
    const key = this.#pinned.get(upstream.root) ?? null;
    if (key === null && this.mode === 'require') throw new UpstreamFailure('signature', 'no signing key for this upstream: give --server-key or publish /serverkey');
    return key;
  }

  /** Ask `upstream` for its key; a network failure is the attempt's failure (the upstream is no better for its pages). */
  async #firstUse(upstream: Upstream, timeouts: Timeouts): Promise<void> {
    const res = await upstreamRequest(upstream.siteUrl('serverkey'), { timeouts });
    const body = await res.text(64 * 1024);
    // It answered: whatever it said, ask again only after TOFU_RETRY_MS.
    this.#lastAsked.set(upstream.root, performance.now());
    if (res.status !== 200) return;
    const pem = body.toString('utf8');
    const key = parseKey(pem);
    if (key === null) return;
    this.#pinned.set(upstream.root, key);
    this.#logger.info({ upstream: upstream.root, key: keyId(key) }, 'trusting the signing key on first use');
    await this.#cache
      .writeKeys(Object.fromEntries([...this.#pinned].map(([root, k]) => [root, k.export({ type: 'spki', format: 'pem' }).toString()])))
      .catch((err: unknown) => this.#logger.warn({ err }, 'could not keep the trusted keys in the cache'));
  }

  /** Fetch the upstream's signature document for a project (null: it has none). */
  async fetch(upstream: Upstream, name: string, timeouts: Timeouts, signal: AbortSignal): Promise<ServerSig | null> {
    const layouts: ('pep381' | 'tree')[] = upstream.signatureLayout === 'tree' ? ['tree', 'pep381'] : ['pep381', 'tree'];
    for (const layout of layouts) {
      const url = layout === 'pep381' ? upstream.siteUrl(`serversig/${encodeURIComponent(name)}`) : `${upstream.root}${encodeURIComponent(name)}/serversig`;
      const res = await upstreamRequest(url, { timeouts, signal, headers: { accept: 'application/json' } });
      const body = await res.text(64 * 1024);
      if (res.status === 404) continue;
      if (res.status !== 200) throw new UpstreamFailure('status', `HTTP ${res.status} for the page signature`, { status: res.status });
      upstream.signatureLayout = layout;
      try {
        return JSON.parse(body.toString('utf8')) as ServerSig;
      } catch {
        throw new UpstreamFailure('signature', 'the page signature is not JSON');
      }
    }
    return null;
  }

  /** Throws a `signature` failure unless `sig` signs `bytes` for `name` at a serial no older than `minSerial`. */
  check(key: KeyObject, sig: ServerSig | null, name: string, format: SignedFormat, bytes: Buffer, minSerial: number | undefined): void {
    if (sig === null) throw new UpstreamFailure('signature', 'the page is not signed');
    const problem = verifyPage(key, sig, minSerial === undefined ? { name } : { name, minSerial }, format, bytes);
    if (problem !== null) throw new UpstreamFailure('signature', problem);
  }
}
