/** The URL to reach a server listening on `host`: a wildcard address is shown as its loopback, IPv6 in brackets. */
export function listenUrl(host: string, port: number): string {
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}`;
}
