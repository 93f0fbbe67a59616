import dns from 'node:dns';
import net, { BlockList, type LookupFunction } from 'node:net';

/**
 * Refuses outbound requests to private, loopback, link-local and other non-public addresses
 * (SSRF). The check runs on the address the socket will actually connect to: inside the
 * connection's DNS lookup, so a name that resolves (or re-resolves) to 127.0.0.1 is refused
 * as surely as the literal. Redirects are never followed, so a public endpoint cannot bounce
 * a request inward either.
 */
const blocked = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  // ::/96 holds the unspecified and loopback addresses and the deprecated IPv4-compatible form
  // (::127.0.0.1); ::ffff:0:0:0/96 the IPv4-translated one (::ffff:0:127.0.0.1). No public host uses either.
  ['::', 96], ['::ffff:0:0:0', 96], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['64:ff9b::', 96], ['100::', 64],
] as const) blocked.addSubnet(network, prefix, 'ipv6');

export class DestinationRefusedError extends Error {
  override readonly name = 'DestinationRefusedError';
  readonly code = 'EDESTINATIONREFUSED';
}

/** True for addresses hookwatch must not send to unless ALLOW_PRIVATE_DESTINATIONS=true. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return false;
  // IPv4-mapped (::ffff:127.0.0.1) is the IPv4 address in disguise.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return blocked.check(mapped[1], 'ipv4');
  return blocked.check(address, 'ipv6');
}

const refused = (host: string, address: string) =>
  new DestinationRefusedError(`refused to connect to ${host} (${address}): private, loopback and link-local destinations are not allowed (ALLOW_PRIVATE_DESTINATIONS=false)`);

/** The hostname of a URL without IPv6 brackets. */
export function urlHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/** Checks a URL whose host is an IP literal (no lookup happens for those); null when acceptable. */
export function literalRefusal(url: URL): DestinationRefusedError | null {
  const host = urlHost(url);
  return net.isIP(host) && isPrivateAddress(host) ? refused(host, host) : null;
}

/** A dns.lookup that fails with DestinationRefusedError when any resolved address is private. */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, options, (error, address, family) => {
    if (error) {
      callback(error, address, family);
      return;
    }
    const all: readonly (string | dns.LookupAddress)[] = Array.isArray(address) ? address : [address];
    for (const entry of all) {
      const ip = typeof entry === 'string' ? entry : entry.address;
      if (isPrivateAddress(ip)) {
        callback(refused(hostname, ip) as NodeJS.ErrnoException, '', 0);
        return;
      }
    }
    callback(null, address, family);
  });
};
