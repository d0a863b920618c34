// Build progress in BuildKit's plain format (`docker build --progress=plain`): one numbered vertex per step,
// "#5 [2/4] RUN make", the step's output as "#5 0.412 line" (seconds since it started), then "#5 CACHED",
// "#5 DONE 1.3s" or "#5 ERROR: …".
export interface Vertex {
  /** A chunk of the step's output (lines may span chunks). */
  output(chunk: string): void;
  cached(): void;
  done(): void;
  error(message: string): void;
  /** A finished sub-task line, "#9 naming to web:1 done". */
  note(text: string): void;
}

export class Progress {
  private next = 1;

  constructor(private readonly out?: (line: string) => void) {}

  vertex(name: string): Vertex {
    const out = this.out;
    if (!out) return { output: () => undefined, cached: () => undefined, done: () => undefined, error: () => undefined, note: () => undefined };
    const id = this.next++;
    const start = Date.now();
    const elapsed = () => (Date.now() - start) / 1000;
    let partial = "";
    const flush = () => {
      if (partial !== "") out(`#${id} ${elapsed().toFixed(3)} ${partial}`);
      partial = "";
    };
    out(`#${id} ${name}`);
    return {
      output(chunk) {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        for (const l of lines) out(`#${id} ${elapsed().toFixed(3)} ${l.replace(/\r$/, "")}`);
      },
      cached: () => out(`#${id} CACHED`),
      done() {
        flush();
        out(`#${id} DONE ${elapsed().toFixed(1)}s`);
      },
      error(message) {
        flush();
        out(`#${id} ERROR: ${message}`);
      },
      note: (text) => out(`#${id} ${text}`),
    };
  }
}
