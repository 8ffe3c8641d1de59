import v8 from 'node:v8';
import vm from 'node:vm';

type Collect = (options?: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let collect: Collect | null | undefined;

/**
 * Runs a full, memory-reducing garbage collection, if the runtime lets us. The initial scan of a large tree and
 * the first pass allocate a lot of short-lived objects, and the heap grows to hold them (hundreds of MB for a
 * 50,000-file tree). A regular collection frees the objects but keeps the grown heap; V8 gives the pages back
 * only after several seconds of idleness on its own. The "last-resort" flavour (what V8 runs before giving up
 * on an allocation: several full collections that also shrink the young generation and release pooled pages)
 * gives them back at once, in a few tens of milliseconds.
 */
export function collectScanGarbage(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as Collect;
    } catch {
      // This Node refuses the flag: idle memory is then left to the collector's own schedule.
      collect = null;
    }
  }
  collect?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
