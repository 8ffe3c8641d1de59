import { isMap, isScalar, isSeq, parseDocument, visit, Document, Scalar, type YAMLSeq } from 'yaml';
import { InternalError, UserError } from '../errors.js';
import type { SyncRule } from '../config/types.js';

/** A service's entry as scaffold writes it into devloop.yaml. */
export interface ServiceEntry {
  name: string;
  path: string;
  manifests?: string;
  target?: string;
  ports: string[];
  sync: SyncRule[];
}

/**
 * Returns `text` (a devloop.yaml) with `entry` appended to `services`. The file is located with the YAML
 * Document API but edited as text: the new item is inserted after the last one, in the indentation the file
 * already uses, so every other byte — comments, quoting, blank lines, flow lists — stays as it was. (Only when
 * `services` itself is a non-empty flow list is the file re-written through the Document API, which keeps comments
 * but may re-space it.) The result is parsed again and must equal the old data plus the entry.
 */
export function addServiceEntry(text: string, entry: ServiceEntry, file: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new UserError(`${file} is not valid YAML: ${doc.errors[0]!.message}`);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const padding = flowPadding(text, doc);
  const services = doc.get('services', true);
  let out: string;

  if (isSeq(services) && !services.flow && services.items.length > 0) {
    out = appendToBlockSeq(text, services, entry, eol, padding);
  } else if (services === undefined || (isScalar(services) && services.value === null) || (isSeq(services) && services.items.length === 0)) {
    out = replaceEmptyServices(text, doc, entry, eol, padding);
  } else if (isSeq(services)) {
    // A non-empty flow list ([{...}, {...}]): keep its style through the Document API.
    services.add(entryNode(doc, entry));
    out = doc.toString({ lineWidth: 0, flowCollectionPadding: padding });
  } else {
    throw new UserError(`${file}: "services" is not a list`, { hint: 'make services a list of service entries, then scaffold again' });
  }

  verify(text, out, entry, file);
  return out;
}

function entryObject(entry: ServiceEntry): Record<string, unknown> {
  const o: Record<string, unknown> = { name: entry.name, path: entry.path };
  if (entry.manifests !== undefined) o.manifests = entry.manifests;
  if (entry.target !== undefined) o.target = entry.target;
  if (entry.ports.length > 0) o.ports = entry.ports;
  if (entry.sync.length > 0) o.sync = entry.sync.map((r) => (r.then ? { from: r.from, to: r.to, then: r.then } : { from: r.from, to: r.to }));
  return o;
}

/** The entry as block YAML lines, nested `indent` spaces per level; port lists in flow style, quoted. */
function entryLines(entry: ServiceEntry, indent: number, padding: boolean): string[] {
  const doc = new Document();
  doc.contents = entryNode(doc, entry);
  return doc.toString({ indent, lineWidth: 0, flowCollectionPadding: padding }).replace(/\n$/, '').split('\n');
}

/** The entry as a YAML node; "8080:8080" is quoted, since YAML 1.1 parsers read it as a base-60 number. */
function entryNode(doc: Document, entry: ServiceEntry) {
  const node = doc.createNode(entryObject(entry));
  const ports = node.get('ports', true);
  if (isSeq(ports)) {
    ports.flow = true;
    for (const p of ports.items) if (p instanceof Scalar) p.type = Scalar.QUOTE_DOUBLE;
  }
  return node;
}

/** Whether the file writes flow lists as `[ a ]` rather than `[a]`: its first non-empty flow list decides. */
function flowPadding(text: string, doc: Document.Parsed): boolean {
  let padding = false;
  visit(doc, {
    Seq(_key, node) {
      if (node.flow && node.items.length > 0 && node.range) {
        padding = text[node.range[0] + 1] === ' ';
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return padding;
}

function columnOf(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1);
}

function asItem(lines: string[], dashCol: number, indent: number, eol: string): string {
  const first = `${' '.repeat(dashCol)}-${' '.repeat(indent - 1)}`;
  const rest = ' '.repeat(dashCol + indent);
  return lines.map((l, i) => (i === 0 ? first + l : l === '' ? l : rest + l)).join(eol) + eol;
}

function appendToBlockSeq(text: string, seq: YAMLSeq, entry: ServiceEntry, eol: string, padding: boolean): string {
  const [start, end] = seq.range!;
  const dashCol = columnOf(text, start);
  const firstItem = seq.items[0] as { range?: [number, number, number] } | undefined;
  const contentCol = firstItem?.range ? columnOf(text, firstItem.range[0]) : dashCol + 2;
  const indent = Math.max(2, contentCol - dashCol);
  const item = asItem(entryLines(entry, indent, padding), dashCol, indent, eol);
  // `end` is just past the last item (its line break included, when there is one).
  const sep = end > 0 && text[end - 1] !== '\n' ? eol : '';
  return text.slice(0, end) + sep + item + text.slice(end);
}

function replaceEmptyServices(text: string, doc: Document.Parsed, entry: ServiceEntry, eol: string, padding: boolean): string {
  const pair = isMap(doc.contents) ? doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'services') : undefined;
  if (!pair) {
    // No services key: append one at the end of the file.
    const sep = text === '' || text.endsWith('\n') ? '' : eol;
    return `${text}${sep}services:${eol}${asItem(entryLines(entry, 2, padding), 2, 2, eol)}`;
  }
  // "services:" or "services: []", possibly with a comment: keep the key line (without the "[]") and put the
  // block list on the lines after it.
  const keyRange = (pair.key as Scalar).range!;
  const colon = text.indexOf(':', keyRange[1]);
  const lineEnd = text.indexOf('\n', colon) === -1 ? text.length : text.indexOf('\n', colon);
  const valueRange = (pair.value as { range?: [number, number, number] } | null)?.range;
  const emptyList = valueRange && valueRange[1] > valueRange[0] ? valueRange : undefined;
  const keyLine = emptyList
    ? text.slice(0, emptyList[0]).trimEnd() + text.slice(emptyList[1], lineEnd)
    : text.slice(0, lineEnd);
  const item = asItem(entryLines(entry, 2, padding), columnOf(text, keyRange[0]) + 2, 2, eol);
  return `${keyLine.replace(/\r$/, '')}${eol}${item}${text.slice(lineEnd + 1)}`;
}

function verify(before: string, after: string, entry: ServiceEntry, file: string): void {
  const old = parseDocument(before).toJS() as Record<string, unknown> | null;
  const expected = { ...(old ?? {}), services: [...((old?.services as unknown[] | null) ?? []), entryObject(entry)] };
  const parsed = parseDocument(after);
  if (parsed.errors.length > 0 || JSON.stringify(parsed.toJS()) !== JSON.stringify(expected)) {
    throw new InternalError(`adding service "${entry.name}" to ${file} would not produce the intended file`, {
      detail: after,
    });
  }
}
