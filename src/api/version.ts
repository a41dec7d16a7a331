// API versions: served unversioned and as /vX.Y/...; outside [MIN, MAX] is a 400.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../native';

export const API_VERSION = '1.44';
export const MIN_API_VERSION = '1.24';
export const SKIFF_VERSION: string = (JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;

export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}
