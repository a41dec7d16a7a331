// Docker's Secret and Config (moby api/types/swarm, v1.44). A secret's view never carries its
// Data (dockerd strips it from every answer); a config's carries it (base64, Go's []byte).
import type { ObjectView } from '../../swarm';

function specOf(v: ObjectView): Record<string, unknown> {
  const s = v.rec.spec;
  return {
    Name: s.Name,
    Labels: s.Labels ?? {},
    ...(v.data ? { Data: v.data.toString('base64') } : {}),
    ...(s.Driver ? { Driver: s.Driver } : {}),
    ...(s.Templating ? { Templating: s.Templating } : {}),
  };
}

export function swarmObjectView(v: ObjectView): Record<string, unknown> {
  return { ID: v.rec.id, Version: { Index: v.version }, CreatedAt: v.rec.createdAt, UpdatedAt: v.rec.updatedAt, Spec: specOf(v) };
}
