// The CLI's argument parser and Docker-style output helpers, without a host.
import { describe, expect, it } from "vitest";
import { closest, helpOf, parseCommand, UsageError, type Command } from "../../provider/cli/args";
import { filters, humanSize, parseTime, renderTemplate, table } from "../../provider/cli/format";
import { commandLine } from "../../provider/cli/objects";
import { HOST_FLAG } from "../../provider/cli/host";

const cmd = (extra: Partial<Command> = {}): Command => ({
  name: "logs",
  summary: "Print a container's output.",
  flags: [
    { name: "follow", short: "f", help: "follow" },
    { name: "timestamps", short: "t", help: "times" },
    { name: "tail", short: "n", value: "N", help: "last N" },
    { name: "env", short: "e", value: "KEY=VALUE", repeat: true, help: "env" },
  ],
  run: async () => 0,
  ...extra,
});

describe("parseCommand", () => {
  it("reads flags as pflag does: separate and inline values, grouped shorts, --bool=false, flags among arguments", () => {
    expect(parseCommand(cmd(), ["web", "--tail", "5", "-ft"])).toEqual({ flags: { tail: "5", follow: true, timestamps: true }, args: ["web"] });
    expect(parseCommand(cmd(), ["--tail=7", "-n3", "web"]).flags.tail).toBe("3");
    expect(parseCommand(cmd(), ["-fn", "2", "web"]).flags).toEqual({ follow: true, tail: "2" });
    expect(parseCommand(cmd(), ["--follow=false", "web"]).flags.follow).toBe(false);
    expect(parseCommand(cmd(), ["-e", "A=1", "--env", "B=2", "c"]).flags.env).toEqual(["A=1", "B=2"]);
    expect(parseCommand(cmd(), ["web", "--", "--tail"]).args).toEqual(["web", "--tail"]);
  });

  it("drops the host a command named, in every form the parser reads, from the command it suggests to run there", () => {
    const logs = cmd({ flags: [...cmd().flags!, HOST_FLAG, { name: "cwd", short: "C", value: "DIR", help: "dir" }] });
    for (const given of [["-H", "ssh://h3"], ["-Hssh://h3"], ["-H=ssh://h3"], ["--host", "ssh://h3"], ["--host=ssh://h3"]]) {
      expect(commandLine(parseCommand(logs, [...given, "web2", "-C", "p"]))).toBe("logs web2 -C p");
      expect(commandLine(parseCommand(logs, ["web2", ...given]))).toBe("logs web2");
    }
    expect(commandLine(parseCommand(logs, ["--tail", "5", "web2"]))).toBe("logs --tail 5 web2");
    // Grouped with other short flags: those stay.
    expect(commandLine(parseCommand(logs, ["-fHssh://h3", "web2"]))).toBe("logs -f web2");
    expect(commandLine(parseCommand(logs, ["-tfH", "ssh://h3", "web2"]))).toBe("logs -tf web2");
  });

  it("keeps a -H of the command run in the container: the parser reads no flags there", () => {
    const exec = cmd({ name: "exec", stopAtFirstArg: true, flags: [HOST_FLAG] });
    expect(commandLine(parseCommand(exec, ["-H", "ssh://h3", "web", "grep", "-Hn", "pattern", "/etc/hosts"]))).toBe("exec web grep -Hn pattern /etc/hosts");
    expect(commandLine(parseCommand(exec, ["web", "grep", "-H", "x"]))).toBe("exec web grep -H x");
    expect(commandLine(parseCommand(cmd({ flags: [HOST_FLAG] }), ["web", "--", "-H", "x"]))).toBe("logs web -- -H x");
  });

  it("stops at the first argument when the rest is a command line of its own", () => {
    expect(parseCommand(cmd({ stopAtFirstArg: true }), ["-t", "web", "ls", "-la", "--tail"])).toEqual({ flags: { timestamps: true }, args: ["web", "ls", "-la", "--tail"] });
  });

  it("refuses unknown flags, missing values and bad booleans, naming the command's help", () => {
    const error = (argv: string[]) => {
      try {
        parseCommand(cmd(), argv);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return `${(e as UsageError).message} | ${(e as UsageError).hint}`;
      }
      throw new Error("no error");
    };
    expect(error(["--tial", "5"])).toBe("unknown flag: --tial | See 'berth logs --help'.");
    expect(error(["-x"])).toBe("unknown shorthand flag: 'x' in -x | See 'berth logs --help'.");
    expect(error(["web", "--tail"])).toContain("flag needs an argument: --tail");
    expect(error(["--follow=maybe"])).toContain('invalid argument "maybe" for "--follow" flag');
  });

  it("generates help from the declarations, and suggests near names only", () => {
    const help = helpOf(cmd({ usage: "CONTAINER" }));
    expect(help).toContain("Usage:  berth logs [OPTIONS] CONTAINER");
    expect(help).toMatch(/-n, --tail N\s+last N/);
    expect(help).toMatch(/-h, --help\s+print this help/);
    expect(closest("lgs", ["logs", "ps", "top"])).toBe("logs");
    expect(closest("foo", ["logs", "ps", "top"])).toBeUndefined();
  });
});

describe("--format templates", () => {
  const obj = { name: "web", state: { status: "running", exitCode: 0 }, labels: { tier: "front" }, ports: [80, 443] };
  it("reads fields case-insensitively, json, index, upper and lower", () => {
    expect(renderTemplate("{{.Name}} {{.State.Status}}", obj)).toBe("web running");
    expect(renderTemplate("{{json .Labels}}", obj)).toBe('{"tier":"front"}');
    expect(renderTemplate('{{index .Labels "tier"}}/{{index .Ports 1}}', obj)).toBe("front/443");
    expect(renderTemplate("{{upper .Name}}\\t{{lower .State.Status}}", obj)).toBe("WEB\trunning");
    expect(renderTemplate("{{.Missing}}", obj)).toBe("<no value>");
    expect(() => renderTemplate("{{range .Ports}}{{.}}{{end}}", obj)).toThrow('function "range" not supported');
  });

  it("aligns tables as Docker's tabwriter does", () => {
    expect(table([["NAME", "STATUS"], ["a-long-name", "Up"]])).toBe("NAME          STATUS\na-long-name   Up");
  });
});

describe("filters, times and sizes", () => {
  it("groups filters by key and refuses unknown ones", () => {
    expect(filters(["name=a", "name=b", "label=x=y"], ["name", "label"], "ps")).toEqual(
      new Map([
        ["name", ["a", "b"]],
        ["label", ["x=y"]],
      ]),
    );
    expect(() => filters(["colour=red"], ["name"], "ps")).toThrow("invalid filter 'colour'");
    expect(() => filters(["name"], ["name"], "ps")).toThrow("bad format of filter");
  });

  it("reads --since/--until as RFC 3339, Unix seconds or a duration before now", () => {
    expect(parseTime("2026-01-02T15:04:05Z", "--since")).toBe(Date.parse("2026-01-02T15:04:05Z"));
    expect(parseTime("1700000000.5", "--since")).toBe(1700000000500);
    expect(Math.abs(parseTime("1h30m", "--since") - (Date.now() - 5_400_000))).toBeLessThan(1000);
    expect(() => parseTime("yesterday", "--since")).toThrow("invalid value");
  });

  it("prints decimal sizes as Docker does", () => {
    expect(humanSize(648)).toBe("648B");
    expect(humanSize(1234)).toBe("1.234kB");
    expect(humanSize(5_250_994_176)).toBe("5.251GB");
  });
});
