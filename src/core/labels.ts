// Docker's label filters ("k", "k=v", "k!=v"; every one must hold) and name patterns: the
// filters of /containers/json, the prunes, /networks and /volumes; and swarmkit's label filter
// (nodes, secrets, configs). Imports nothing.

export function labelMatches(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const neq = f.indexOf('!=');
    if (neq > 0) return labels[f.slice(0, neq)] !== f.slice(neq + 2);
    const eq = f.indexOf('=');
    if (eq < 0) return Object.prototype.hasOwnProperty.call(labels, f);
    return labels[f.slice(0, eq)] === f.slice(eq + 1);
  });
}

/**
 * swarmkit's filterMatchLabels, which the swarm's lists use: "k" and "k=" need the key, "k=v"
 * also the value (moby turns the filter into a map first, so there is no "!=").
 */
export function swarmLabelsMatch(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf('=');
    const k = i < 0 ? w : w.slice(0, i);
    return Object.prototype.hasOwnProperty.call(labels, k) && (i < 0 || w.slice(i + 1) === '' || labels[k] === w.slice(i + 1));
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
