import type { EngineEvent } from '../../core/engine/events.js';

/**
 * Version of the JSON-lines event schema (docs/events.md). Adding an event type or an optional field keeps it;
 * removing or renaming a field, or changing its meaning, raises it.
 */
export const EVENT_SCHEMA_VERSION = 1;

/** A subscriber printing one JSON object per event and line, each carrying the schema version as `v`. */
export function jsonLinesRenderer(write: (line: string) => void): (e: EngineEvent) => void {
  return (e) => write(`${JSON.stringify({ v: EVENT_SCHEMA_VERSION, ...e })}\n`);
}
