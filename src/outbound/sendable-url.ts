/**
 * Whether node:http can send to this URL's user-info: it percent-decodes the user name and
 * password into the Authorization header and throws on a bad escape (`%ZZ`), so such a URL,
 * however valid to the URL parser, could never be sent to. A URL that does not parse passes
 * here: the URL check itself reports that.
 */
export function userInfoDecodes(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return true;
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return true;
  } catch {
    return false;
  }
}

export const USER_INFO_PROBLEM = 'its user name or password is not valid percent-encoding';
