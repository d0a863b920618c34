// Pure: a counting semaphore, at most `size` jobs at once, the others in the order given. Dozens of runc creates
// (or layer downloads) started together on a 2-core host only queue in the kernel and thrash; a few at a time
// finish sooner in total.

export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}
