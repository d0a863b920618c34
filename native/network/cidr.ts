// Pure: no host access (the provider imports it). IPv4 addresses as unsigned 32-bit numbers, and subnets in CIDR
// form.

export interface Subnet {
  /** Network address. */
  base: number;
  prefix: number;
}

export function parseIPv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const mask = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/** Parses "10.89.0.0/24"; the address must be the network address, and the subnet must hold at least 2 hosts. */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const ip = m ? parseIPv4(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(prefix >= 1 && prefix <= 30)) {
    throw new Error(`invalid subnet "${cidr}": expected an IPv4 CIDR with a prefix of 1-30, e.g. "10.89.0.0/24"`);
  }
  const base = (ip & mask(prefix)) >>> 0;
  if (base !== ip) {
    throw new Error(`invalid subnet "${cidr}": it should be ${formatIPv4(base)}/${prefix}`);
  }
  return { base, prefix };
}

export const formatSubnet = (s: Subnet): string => `${formatIPv4(s.base)}/${s.prefix}`;

export const broadcast = (s: Subnet): number => (s.base | (~mask(s.prefix) >>> 0)) >>> 0;

export const contains = (s: Subnet, ip: number): boolean => (ip & mask(s.prefix)) >>> 0 === s.base;

/** An address that may be given to a host: inside the subnet, not its network or broadcast address. */
export const isHostAddress = (s: Subnet, ip: number): boolean =>
  contains(s, ip) && ip !== s.base && ip !== broadcast(s);

export const overlaps = (a: Subnet, b: Subnet): boolean =>
  contains(a, b.base) || contains(b, a.base);

/** Whether inner lies wholly inside outer. */
export const within = (outer: Subnet, inner: Subnet): boolean => inner.prefix >= outer.prefix && contains(outer, inner.base);

/** Any "a.b.c.d[/n]" (a route's destination), as the subnet it covers; undefined if it is not one. */
export function coveringSubnet(s: string): Subnet | undefined {
  const [ip, bits = "32", ...rest] = s.split("/");
  const n = parseIPv4(ip);
  const prefix = Number(bits);
  if (n === undefined || rest.length > 0 || !(prefix >= 0 && prefix <= 32)) return undefined;
  return { base: (n & mask(prefix)) >>> 0, prefix };
}
