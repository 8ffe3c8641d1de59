import { stripVTControlCharacters } from 'node:util';
import { EVENT_TYPES, type EngineEvent } from '../../core/engine/events.js';
import { buildFailedLine, commandExitedLine } from '../../core/engine/messages.js';
import { formatEvent } from '../render/plain.js';
import { RingBuffer } from './ring.js';

export type LogKind = 'out' | 'event' | 'warn' | 'error';

export interface LogLine {
  at: number;
  /** Absent for run-wide lines (run started/finished, namespace created). */
  service?: string;
  kind: LogKind;
  text: string;
}

/** What the dashboard shows per service beyond EngineState: declared ports, and failures of event types added later. */
export interface ServiceActivity {
  /** Forwarded ports as "local:remote"; declared ones until a forward event says otherwise. */
  ports: string[];
  /** A failure the engine state has no phase for (events added later), as one line. */
  lastError?: string;
  /** The first part of the failed event's type ("sync" for sync.failed). */
  lastErrorKind?: string;
  /** While the service is swapped: where its traffic goes, and the requests carried so far. */
  swap?: { local: string; requests: number; personal?: boolean };
}

export interface ActivityOptions {
  /** Lines kept per service. */
  perService?: number;
  /** Lines kept across all services. */
  overall?: number;
  /** Declared port-forwards per service, shown until forward events arrive. */
  ports?: Record<string, string[]>;
}

/** Any event, including variants this build does not know yet. */
type AnyEvent = { type: string; at: number; service?: unknown; [field: string]: unknown };


/** Text fit for a terminal cell: no escape sequences, no tabs or carriage returns to break the layout. */
export function cleanLine(s: string): string {
  return stripVTControlCharacters(s).replace(/\t/g, '  ').replace(/[\r\n]+/g, ' ').replace(/[\u0000-\u001f\u007f]/g, '');
}

/**
 * Folds engine events into bounded per-service log buffers (what the log pane shows); everything else the dashboard
 * shows comes from the engine state. Cheap per event (the log path is two ring-buffer pushes) so a flood of log lines costs little;
 * the dashboard reads it only when it draws.
 */
export class Activity {
  private readonly perService: number;
  private readonly overall: RingBuffer<LogLine>;
  private readonly logs = new Map<string, RingBuffer<LogLine>>();
  private readonly services = new Map<string, ServiceActivity>();

  constructor(opts: ActivityOptions = {}) {
    this.perService = opts.perService ?? 500;
    this.overall = new RingBuffer(opts.overall ?? 2000);
    for (const [name, ports] of Object.entries(opts.ports ?? {})) this.service(name).ports = [...ports];
  }

  /** Lines seen in total (also those no longer kept). */
  get linesSeen(): number {
    return this.overall.total;
  }

  service(name: string): ServiceActivity {
    let s = this.services.get(name);
    if (!s) {
      s = { ports: [] };
      this.services.set(name, s);
    }
    return s;
  }

  /** The newest `n` lines of one service, or of all when `service` is undefined; oldest first. */
  tail(service: string | undefined, n: number): LogLine[] {
    if (service === undefined) return this.overall.tail(n);
    return this.logs.get(service)?.tail(n) ?? [];
  }

  record(event: EngineEvent): void {
    const e = event as AnyEvent;
    const service = typeof e.service === 'string' ? e.service : undefined;
    if (!EVENT_TYPES.has(e.type)) {
      this.recordUnknown(e, service);
      return;
    }
    switch (event.type) {
      case 'build.log':
      case 'log.line':
        this.log({ at: event.at, service: event.service, kind: 'out', text: cleanLine(event.line) });
        return;
      case 'sync.command':
        if (event.exitCode !== 0) {
          this.log({ at: event.at, service: event.service, kind: 'error', text: cleanLine(commandExitedLine(event)) });
          for (const l of event.output.split('\n').filter(Boolean).slice(-20)) this.log({ at: event.at, service: event.service, kind: 'error', text: cleanLine(l) });
          return;
        }
        break;
      case 'deliver.progress':
        // Per-layer chatter stays out of the log pane: the row shows the count (engine state).
        return;
      case 'build.started':
        if (service) delete this.service(service).lastError;
        break;
      case 'build.failed':
        this.log({ at: event.at, service: event.service, kind: 'error', text: cleanLine(buildFailedLine(event)) });
        for (const l of event.lastLines) this.log({ at: event.at, service: event.service, kind: 'error', text: cleanLine(l) });
        return;
      case 'plan.computed':
        for (const s of event.services) this.service(s.name);
        break;
      case 'swap.started':
        this.service(event.service).swap = { local: event.ports.map((p) => `127.0.0.1:${p.local}`).join(','), requests: 0, ...(event.mode === 'personal' ? { personal: true } : {}) };
        break;
      case 'swap.traffic': {
        const swap = this.service(event.service).swap;
        if (swap) swap.requests = event.requests;
        // Counted on the row, not logged.
        return;
      }
      case 'swap.restored':
        delete this.service(event.service).swap;
        break;
      default:
        break;
    }
    const kind: LogKind = /\.(failed|refused|error)$|^build\.blocked$/.test(event.type) ? 'error' : event.type === 'warning' ? 'warn' : 'event';
    for (const line of formatEvent(event, { color: false, verbose: false }) ?? []) {
      this.log({ at: event.at, ...(service ? { service } : {}), kind, text: cleanLine(withoutPrefix(line, service)) });
    }
  }

  /** Event variants added to the engine after this renderer: logged generically, never dropped or fatal. */
  private recordUnknown(e: AnyEvent, service: string | undefined): void {
    if (service && typeof e.line === 'string') {
      this.log({ at: e.at, service, kind: e.stream === 'stderr' ? 'warn' : 'out', text: cleanLine(e.line) });
      return;
    }
    const failed = /(\.failed|\.error)$/.test(e.type);
    const message = typeof e.message === 'string' ? e.message : undefined;
    if (service) {
      // The error line stays until the same kind of work reports again without failing.
      const s = this.service(service);
      const kind = e.type.split('.')[0]!;
      if (failed) {
        s.lastError = cleanLine(`${kind} failed${message ? `: ${message}` : ''}`);
        s.lastErrorKind = kind;
      } else if (s.lastErrorKind === kind) {
        delete s.lastError;
        delete s.lastErrorKind;
      }
    }
    const fields = Object.entries(e)
      .filter(([k, v]) => k !== 'type' && k !== 'at' && k !== 'service' && v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    this.log({ at: e.at, ...(service ? { service } : {}), kind: failed ? 'error' : 'event', text: cleanLine(`${e.type} ${fields.join(' ')}`.trim()) });
  }

  private log(line: LogLine): void {
    this.overall.push(line);
    if (line.service === undefined) return;
    let ring = this.logs.get(line.service);
    if (!ring) {
      ring = new RingBuffer(this.perService);
      this.logs.set(line.service, ring);
    }
    ring.push(line);
  }
}

function withoutPrefix(line: string, service: string | undefined): string {
  return service && line.startsWith(`${service} `) ? line.slice(service.length + 1) : line;
}
