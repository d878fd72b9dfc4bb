/** The CLI's pino logger: JSON lines on stderr, so stdout stays for what the user asked for. */
import { pino, type Logger } from 'pino';

export function createLogger(level: string, component: string): Logger {
  return pino({ level, base: { component } }, pino.destination({ fd: 2, sync: false }));
}
