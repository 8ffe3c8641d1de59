import { Box, Text, useApp, useInput } from 'ink';
import { useEffect, useRef, useState } from 'react';

export interface WizardTemplate {
  name: string;
  description: string;
  needsModule: boolean;
}

export interface WizardAnswers {
  template: string;
  name: string;
  path: string;
  module?: string;
}

export interface WizardProps {
  templates: WizardTemplate[];
  /** Why a service name cannot be used (invalid, taken), or undefined. */
  nameProblem: (name: string) => string | undefined;
  defaultPath: (name: string) => string;
  pathProblem: (path: string) => Promise<string | undefined>;
  /** The module path the repository's convention gives for a service directory, if any. */
  defaultModule: (path: string) => Promise<string | undefined>;
  moduleProblem: (module: string) => string | undefined;
  /** Answers given as flags: those questions are not asked. */
  given: { path?: string; module?: string };
  onDone: (answers: WizardAnswers | undefined) => void;
}

type Step = 'template' | 'name' | 'path' | 'module';

/** The questions of `devloop scaffold` run without arguments: template, name, directory, Go module path. */
export function Wizard(props: WizardProps) {
  const { exit } = useApp();
  const [step, setStep] = useState<Step>('template');
  const [template, setTemplate] = useState<WizardTemplate | undefined>();
  const [name, setName] = useState('');
  const [dir, setDir] = useState<string>('');

  const finish = (answers: WizardAnswers | undefined) => {
    props.onDone(answers);
    exit();
  };
  useInput((_input, key) => {
    if (key.escape) finish(undefined);
  });

  const afterPath = (t: WizardTemplate, n: string, p: string) => {
    if (t.needsModule && props.given.module === undefined) {
      setDir(p);
      setStep('module');
    } else {
      finish({ template: t.name, name: n, path: p, ...(props.given.module !== undefined ? { module: props.given.module } : {}) });
    }
  };

  return (
    <Box flexDirection="column">
      {template && <Text color="gray">template: {template.name}</Text>}
      {step !== 'template' && step !== 'name' && <Text color="gray">name: {name}</Text>}
      {step === 'module' && <Text color="gray">directory: {dir}</Text>}
      {step === 'template' && (
        <Select
          label="Template"
          items={props.templates.map((t) => ({ value: t, label: t.name, detail: t.description }))}
          onSelect={(t) => {
            setTemplate(t);
            setStep('name');
          }}
        />
      )}
      {step === 'name' && template && (
        <Question
          label="Service name"
          initial=""
          check={async (v) => props.nameProblem(v)}
          onSubmit={(v) => {
            setName(v);
            if (props.given.path !== undefined) afterPath(template, v, props.given.path);
            else setStep('path');
          }}
        />
      )}
      {step === 'path' && template && (
        <Question label="Directory (from the project root)" initial={props.defaultPath(name)} check={props.pathProblem} onSubmit={(v) => afterPath(template, name, v)} />
      )}
      {step === 'module' && template && (
        <ModuleQuestion dir={dir} {...props} onSubmit={(m) => finish({ template: template.name, name, path: dir, module: m })} />
      )}
      <Text color="gray">enter to confirm · esc to cancel</Text>
    </Box>
  );
}

function ModuleQuestion(props: WizardProps & { dir: string; onSubmit: (m: string) => void }) {
  const [initial, setInitial] = useState<string | undefined>();
  useEffect(() => {
    let live = true;
    // A suggestion only: without one the field starts empty; `live` drops an answer that comes after unmount.
    props.defaultModule(props.dir).then((m) => live && setInitial(m ?? ''), () => undefined);
    return () => {
      live = false;
    };
  }, [props.dir]);
  if (initial === undefined) return <Text>Go module path: …</Text>;
  return <Question label="Go module path" initial={initial} check={async (v) => props.moduleProblem(v)} onSubmit={props.onSubmit} />;
}

interface SelectItem<T> {
  value: T;
  label: string;
  detail: string;
}

export function Select<T>(props: { label: string; items: SelectItem<T>[]; onSelect: (v: T) => void }) {
  // As in Question, the ref follows keys that arrive before the next render.
  const current = useRef(0);
  const [index, setIndex] = useState(0);
  const move = (by: number) => {
    current.current = (current.current + by + props.items.length) % props.items.length;
    setIndex(current.current);
  };
  useInput((_input, key) => {
    if (key.upArrow) move(-1);
    else if (key.downArrow) move(1);
    else if (key.return) props.onSelect(props.items[current.current]!.value);
  });
  const width = Math.max(...props.items.map((i) => i.label.length));
  return (
    <Box flexDirection="column">
      <Text bold>{props.label} (↑/↓, enter)</Text>
      {props.items.map((item, i) => (
        <Text key={item.label} color={i === index ? 'cyan' : undefined}>
          {i === index ? '❯ ' : '  '}
          {item.label.padEnd(width)}  <Text color="gray">{item.detail}</Text>
        </Text>
      ))}
    </Box>
  );
}

/** A one-line text question; enter submits when `check` finds no problem, else the problem is shown. */
export function Question(props: { label: string; initial: string; check: (v: string) => Promise<string | undefined>; onSubmit: (v: string) => void }) {
  // Keys can arrive faster than React re-renders: the ref holds the text typed so far.
  const typed = useRef(props.initial);
  const [value, setValue] = useState(props.initial);
  const [problem, setProblem] = useState<string | undefined>();
  const update = (next: string) => {
    typed.current = next;
    setValue(next);
    setProblem(undefined);
  };
  const submit = () => {
    const v = typed.current.trim();
    props.check(v).then(
      (p) => (p ? setProblem(p) : props.onSubmit(v)),
      (err: unknown) => setProblem(err instanceof Error ? err.message : String(err)),
    );
  };
  useInput((input, key) => {
    if (key.return) {
      submit();
    } else if (key.backspace || key.delete) {
      update(typed.current.slice(0, -1));
    } else if (input && !key.ctrl && !key.meta && !key.escape && !key.upArrow && !key.downArrow && !key.tab) {
      // Pasted text may end with a line break: take it as enter.
      const [text = '', ...rest] = input.split(/\r\n|\r|\n/);
      update(typed.current + text);
      if (rest.length > 0) submit();
    }
  });
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>{props.label}: </Text>
        {value}
        <Text inverse> </Text>
      </Text>
      {problem && <Text color="red">{problem}</Text>}
    </Box>
  );
}
