// Containers and execs announce what happened on the Containers emitter ('event', action, rec,
// extra attributes); this turns those into Docker-shaped events on the daemon's bus: Actor.ID is
// the container id, attributes are the container's labels plus image and name (and exitCode for
// die, signal for kill, execID for exec_*, oldName for rename, height/width for resize).
import type { ContainerRecord, Containers } from './containers';
import type { EventBus } from '../core/events';

export function containerEventAttributes(rec: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(rec.Config.Labels ?? {}),
    image: rec.Config.Image || rec.Image,
    name: rec.Name.replace(/^\//, ''),
    ...extra,
  };
}

/** Publishes every container event; returns the function that stops doing so. */
export function bridgeContainerEvents(containers: Containers, bus: EventBus): () => void {
  const onEvent = (action: string, rec: ContainerRecord, extra?: Record<string, string>) => {
    bus.publish('container', action, rec.Id, containerEventAttributes(rec, extra));
  };
  containers.on('event', onEvent);
  return () => containers.off('event', onEvent);
}
