// What every CLI command shares without loading any of the library: podman's global options and a failure already
// worded for the user with podman's exit code.

export interface GlobalOptions {
  root?: string;
  runroot?: string;
  driver?: string;
  blobCache?: string;
}

/** A failure already worded for the user, with podman's exit code. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
