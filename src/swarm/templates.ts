// Docker's service templates (swarmkit template/context.go): {{.Service.Name}}, {{.Task.Slot}},
// {{.Node.Hostname}}… in a task's hostname, env values and mount sources/targets, expanded on the
// node that runs the task. Only field references (and `index .X.Labels "k"`) are understood,
// which is what Docker documents; anything else rejects the task with the parse error.
import { invalid } from '../core/errors';

export interface TemplateContext {
  Service: { ID: string; Name: string; Labels: Record<string, string> };
  Node: { ID: string; Hostname: string; Platform: { Architecture: string; OS: string } };
  Task: { ID: string; Name: string; Slot: string };
}

function lookup(ctx: TemplateContext, path: string[]): unknown {
  let v: unknown = ctx;
  for (const p of path) {
    if (typeof v !== 'object' || v === null || !(p in v)) throw invalid(`template: expanding: can't evaluate field ${p}`);
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function field(ctx: TemplateContext, path: string[]): string {
  const v = lookup(ctx, path);
  if (typeof v === 'object' && v !== null)
    return `map[${Object.entries(v)
      .map(([k, x]) => `${k}:${String(x)}`)
      .join(' ')}]`;
  return String(v);
}

export function expand(text: string, ctx: TemplateContext): string {
  return text.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_all, expr: string) => {
    const idx = /^index\s+\.([\w.]+)\s+"([^"]*)"$/.exec(expr);
    if (idx) {
      const m = lookup(ctx, idx[1].split('.'));
      return typeof m === 'object' && m !== null ? String((m as Record<string, unknown>)[idx[2]] ?? '') : '';
    }
    const ref = /^\.([\w.]+)$/.exec(expr);
    if (!ref) throw invalid(`template: expanding: function "${expr.split(/\s+/)[0]}" not defined`);
    return field(ctx, ref[1].split('.'));
  });
}
