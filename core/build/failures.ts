/** How a build can end other than with an image: plain classes, so that callers can tell them apart cheaply. */

/** A build that the daemon rejected: which step failed and what it printed last. */
export class BuildFailure extends Error {
  constructor(
    message: string,
    readonly step: string | undefined,
    readonly lastLines: string[],
  ) {
    super(message);
    this.name = 'BuildFailure';
  }
}

/**
 * The build context changed while it was being sent (a file listed for it vanished: a branch switch, a generator).
 * Not a failure of the service: the build is cancelled, and the tree as it is now is planned and built again.
 */
export class ContextChanged extends Error {
  constructor(readonly file: string, cause: unknown) {
    super(`${file} changed while the build context was being sent`, { cause });
    this.name = 'ContextChanged';
  }
}
