/**
 * Wakes whoever waits for the changelog to move (long-poll and SSE clients of
 * `/changes`) the moment a write commits. Writers made by this process call
 * `committed()`; writes by other processes are noticed by a short poll.
 */
import { EventEmitter } from 'node:events';

export class ChangeHub {
  private readonly events = new EventEmitter();
  private latest = 0;

  constructor() {
    // Every waiting client adds a listener; the cap on clients is enforced by the route.
    this.events.setMaxListeners(0);
  }

  /** The newest serial this process knows to be committed. */
  get lastSerial(): number {
    return this.latest;
  }

  /** Tell waiters that the changelog reached `serial`. */
  committed(serial: number): void {
    if (serial <= this.latest) return;
    this.latest = serial;
    this.events.emit('serial', serial);
  }

  /** Resolves with the new serial once it passes `since`, or with null after `timeoutMs` or on abort. */
  waitPast(since: number, timeoutMs: number, signal?: AbortSignal): Promise<number | null> {
    if (this.latest > since) return Promise.resolve(this.latest);
    return new Promise((resolve) => {
      const done = (value: number | null): void => {
        clearTimeout(timer);
        this.events.off('serial', onSerial);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const onSerial = (serial: number): void => {
        if (serial > since) done(serial);
      };
      const onAbort = (): void => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      this.events.on('serial', onSerial);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Call `listener` on every new serial until the returned function is called. */
  subscribe(listener: (serial: number) => void): () => void {
    this.events.on('serial', listener);
    return () => this.events.off('serial', listener);
  }
}
