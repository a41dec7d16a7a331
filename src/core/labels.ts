// Docker's label filters ("k", "k=v", "k!=v"; every one must hold) and name patterns: the
// filters of /containers/json, the prunes, /networks and /volumes. Imports nothing.

export function labelMatches(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const neq = f.indexOf('!=');
    if (neq > 0) return labels[f.slice(0, neq)] !== f.slice(neq + 2);
    const eq = f.indexOf('=');
    if (eq < 0) return Object.prototype.hasOwnProperty.call(labels, f);
    return labels[f.slice(0, eq)] === f.slice(eq + 1);
  });
}

/** A filter value as a regular expression; one that is none matches as a substring. */
export function regexMatch(pattern: string, s: string): boolean {
  try {
    return new RegExp(pattern).test(s);
  } catch {
    return s.includes(pattern);
  }
}
