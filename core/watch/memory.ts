import v8 from 'node:v8';
import vm from 'node:vm';

let collect: (() => void) | null | undefined;

/**
 * Runs a full garbage collection once, if the runtime lets us. The initial scan of a large tree allocates a lot
 * of short-lived objects and an idle process never collects them (nothing allocates, so nothing triggers a GC):
 * collecting once after the scan lets V8 give that memory back, which keeps an idle session small.
 */
export function collectScanGarbage(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  collect?.();
}
