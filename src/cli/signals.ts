// Ctrl-C and SIGTERM as cancellation: long commands (pull, load, save, checkout, export, layer apply) hand this
// signal to the library, which stops and cleans up instead of leaving half-written files.

export interface Interrupt {
  signal: AbortSignal;
  dispose(): void;
}

export function interruptSignal(): Interrupt {
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
