import { Box, Text } from 'ink';
import type { DashboardView, ServiceRow, Tone, ViewLogLine } from './view.js';

/** Ink colour names per tone; used only when colour is on (NO_COLOR and pipes get none). */
const TONE_COLOR: Record<Tone, string | undefined> = {
  plain: undefined,
  dim: 'gray',
  busy: 'cyan',
  good: 'green',
  bad: 'red',
  warn: 'yellow',
};

/** Distinct colours for service names in the all-services log. */
const SERVICE_COLORS = ['cyan', 'magenta', 'blue', 'yellow', 'green', 'white'];

function serviceColor(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return SERVICE_COLORS[h % SERVICE_COLORS.length]!;
}

/** `text` cut or padded to exactly `width` columns, keeping a space before the next cell (cells hold single-width text). */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length < width) return text + ' '.repeat(width - chars.length);
  return width >= 2 ? `${chars.slice(0, width - 2).join('')}… ` : ' '.repeat(width);
}

/**
 * One cell: a span inside the row's single line of text. Rows are lines, not boxes of boxes, so a frame is a few
 * dozen nodes for Ink to lay out however many columns there are.
 */
function Cell(props: { width: number; text: string; color?: string | undefined; bold?: boolean; dim?: boolean }) {
  if (props.width <= 0) return null;
  return (
    <Text {...(props.color ? { color: props.color } : {})} bold={!!props.bold} dimColor={!!props.dim}>
      {fit(props.text, props.width)}
    </Text>
  );
}

function bar(done: number, total: number, width: number): string {
  const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : 0;
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

function Row({ row, view }: { row: ServiceRow; view: DashboardView }) {
  const c = view.columns;
  const tone = view.color ? TONE_COLOR[row.tone] : undefined;
  const state = row.progress ? `${row.state} ${bar(row.progress.done, row.progress.total, 5)}` : row.state;
  const mark = row.tone === 'bad' ? '✗ ' : '';
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Cell width={2} text={row.selected ? '❯' : ' '} color={view.color ? 'cyan' : undefined} bold />
        <Cell width={c.name} text={row.name} bold={row.selected} />
        <Cell width={c.state} text={`${mark}${state}`} color={tone} />
        <Cell width={c.tag} text={row.tag} dim={view.color} />
        <Cell width={c.build} text={row.build} />
        <Cell width={c.deploy} text={row.deploy} />
        <Cell width={c.pods} text={row.pods} />
        <Cell width={c.ports} text={row.ports} />
      </Text>
      {row.error !== undefined && (
        <Box paddingLeft={4} width={view.width}>
          <Text wrap="truncate-end" {...(view.color ? { color: 'red' } : {})}>
            {row.error}
          </Text>
        </Box>
      )}
    </Box>
  );
}

function Rule({ title, width }: { title: string; width: number }) {
  const head = `─ ${title} `;
  return <Text wrap="truncate-end">{head + '─'.repeat(Math.max(0, width - head.length))}</Text>;
}

function LogLineView({ line, prefixWidth, color }: { line: ViewLogLine; prefixWidth: number; color: boolean }) {
  const textColor = !color ? undefined : line.kind === 'error' ? 'red' : line.kind === 'warn' ? 'yellow' : line.kind === 'event' ? 'gray' : undefined;
  return (
    <Text wrap="truncate-end">
      {line.service !== undefined && (
        <Text {...(color ? { color: serviceColor(line.service) } : {})}>{`${line.service.slice(0, prefixWidth).padEnd(prefixWidth)} │ `}</Text>
      )}
      {prefixWidth > 0 && line.service === undefined && `${' '.repeat(prefixWidth)} │ `}
      <Text {...(textColor ? { color: textColor } : {})}>{line.text}</Text>
    </Text>
  );
}

/** The whole dashboard: a pure function of the view. */
export function Dashboard({ view }: { view: DashboardView }) {
  const c = view.columns;
  const statusColor = view.color ? TONE_COLOR[view.status.tone] : undefined;
  const pane = view.pane;
  const prefixWidth =
    'lines' in pane && pane.lines.some((l) => l.service !== undefined)
      ? Math.min(14, Math.max(...pane.lines.map((l) => l.service?.length ?? 0)))
      : 0;
  return (
    <Box flexDirection="column" width={view.width} height={view.height} overflow="hidden">
      <Box justifyContent="space-between" width={view.width}>
        <Text bold wrap="truncate-end">
          {view.title}
        </Text>
        <Text wrap="truncate-end" {...(statusColor ? { color: statusColor } : {})}>
          {view.status.text}
        </Text>
      </Box>
      <Text wrap="truncate-end" dimColor={view.color}>
        {view.target || ' '}
      </Text>
      {view.banner !== undefined && (
        <Text wrap="truncate-end" {...(view.color ? { color: 'red' } : {})}>
          {`✗ ${view.banner}`}
        </Text>
      )}
      <Text wrap="truncate-end">
        <Cell width={2} text="" />
        <Cell width={c.name} text="SERVICE" bold />
        <Cell width={c.state} text="STATE" bold />
        <Cell width={c.tag} text="TAG" bold />
        <Cell width={c.build} text="BUILD" bold />
        <Cell width={c.deploy} text="DEPLOY" bold />
        <Cell width={c.pods} text="PODS" bold />
        <Cell width={c.ports} text="PORTS" bold />
      </Text>
      {view.empty !== undefined && <Text dimColor={view.color}>{`  ${view.empty}`}</Text>}
      {view.rows.map((row) => (
        <Row key={row.name} row={row} view={view} />
      ))}
      {view.hiddenAbove + view.hiddenBelow > 0 && (
        <Text dimColor={view.color}>
          {`  ${[view.hiddenAbove ? `↑ ${view.hiddenAbove} more` : '', view.hiddenBelow ? `↓ ${view.hiddenBelow} more` : ''].filter(Boolean).join('  ')}`}
        </Text>
      )}
      <Rule title={pane.title} width={view.width} />
      <Box flexDirection="column" flexGrow={1} overflow="hidden">
        {'help' in pane
          ? pane.help.map(([keys, what]) => (
              <Text key={keys} wrap="truncate-end">
                <Text bold>{`  ${keys!.padEnd(11)}`}</Text>
                {what}
              </Text>
            ))
          : pane.lines.map((line, i) => <LogLineView key={i} line={line} prefixWidth={prefixWidth} color={view.color} />)}
      </Box>
      <Text wrap="truncate-end" {...(view.color && TONE_COLOR[view.footer.tone] ? { color: TONE_COLOR[view.footer.tone]! } : {})}>
        {view.footer.text}
      </Text>
    </Box>
  );
}
