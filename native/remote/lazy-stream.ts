// A stream opened on its first read, with something to run once when the reading ends.

/**
 * The items of `open()`'s stream, opened on the first next(); `after` runs once however the reading ends (the
 * stream's end, an error, return()), also when the reader stops before the first read — which an async
 * generator's finally misses. return() passes on to the source, so a read waiting there ends too.
 */
export function lazyStream<T>(open: () => Promise<AsyncIterable<T>>, after: () => Promise<void>): AsyncIterableIterator<T> {
  let source: Promise<AsyncIterator<T>> | undefined;
  let ran = false;
  const finish = async () => {
    if (ran) return;
    ran = true;
    await after();
  };
  const it: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => it,
    next: async () => {
      if (ran) return { value: undefined, done: true };
      try {
        source ??= open().then((s) => s[Symbol.asyncIterator]());
        const r = await (await source).next();
        if (r.done) await finish();
        return r;
      } catch (e) {
        await finish();
        throw e;
      }
    },
    return: async () => {
      try {
        const s = await source?.catch(() => undefined);
        await s?.return?.();
      } finally {
        await finish();
      }
      return { value: undefined, done: true };
    },
  };
  return it;
}
