// API versions: served unversioned and as /vX.Y/...; outside [MIN, MAX] is a 400.
import type { Response } from 'express';

export const API_VERSION = '1.44';
export const MIN_API_VERSION = '1.24';

export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** Kept per request by the server: the /vX.Y a client asked for, else the newest (as dockerd). */
export function setRequestedVersion(res: Response, v: string): void {
  res.locals.apiVersion = v;
}

/** The API version a request is answered at (moby's httputils.VersionFromContext). */
export function requestedVersion(res: Response): string {
  const v: unknown = res.locals.apiVersion;
  return typeof v === 'string' ? v : API_VERSION;
}
