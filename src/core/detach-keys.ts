// Docker's detach key sequences ("ctrl-p,ctrl-q"), as moby/term's ToBytes reads them. Imports nothing.

/** "ctrl-p,ctrl-q" → [16, 17]; undefined when a key is none Docker knows. */
export function detachKeyCodes(spec: string): number[] | undefined {
  const out: number[] = [];
  for (const key of spec.split(',')) {
    if (Buffer.byteLength(key) === 1) out.push(key.charCodeAt(0));
    else if (key === 'DEL') out.push(127);
    else {
      const m = /^ctrl-([a-z@[\\\]^_])$/.exec(key);
      if (!m) return undefined;
      const c = m[1];
      out.push(c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : c.charCodeAt(0) - 64);
    }
  }
  return out;
}
