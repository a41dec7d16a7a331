// The daemon's shape, measured from its sources (issue 13's targets): the import graph between
// files and floors, function and class sizes, who loads the addon. Parsed with the TypeScript
// compiler's own parser (no type-check: a whole-tree pass takes a second).
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

export const ROOT = path.resolve(__dirname, '../..');

/** Floors of src/, bottom first: a floor imports only floors below it (issue 13, architecture.md). */
export const FLOORS: string[][] = [
  ['core'],
  ['host'],
  ['cgroups'],
  ['images'],
  ['runtime'],
  ['network', 'volumes'],
  ['containers'],
  ['builder', 'swarm'],
  ['api'],
  ['.'], // main.ts, config.ts: the composition root
];

export interface Import {
  from: string; // file, relative to ROOT
  to: string; // file, relative to ROOT
  typeOnly: boolean;
}

export interface Sized {
  file: string;
  name: string;
  line: number;
  lines: number;
}

export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = path.posix.join(d, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  walk(dir);
  return out.sort();
}

function resolveModule(fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(fromFile), spec));
  for (const c of [`${base}.ts`, `${base}/index.ts`]) if (fs.existsSync(path.join(ROOT, c))) return c;
  return undefined;
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, fs.readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.ES2022, true);
}

/** Every relative import (static, re-export, require, dynamic import) of the files. */
export function imports(files: string[]): Import[] {
  const out: Import[] = [];
  for (const file of files) {
    const sf = parse(file);
    const add = (spec: string, typeOnly: boolean) => {
      const to = resolveModule(file, spec);
      if (to) out.push({ from: file, to, typeOnly });
    };
    const visit = (n: ts.Node) => {
      if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
        const c = n.importClause;
        const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
        const typeOnly = !!c && (c.isTypeOnly || (!c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
        add(n.moduleSpecifier.text, typeOnly);
      } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
        const named = n.exportClause && ts.isNamedExports(n.exportClause) ? n.exportClause.elements : undefined;
        add(n.moduleSpecifier.text, n.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      } else if (ts.isCallExpression(n) && n.arguments.length === 1 && ts.isStringLiteral(n.arguments[0])) {
        const callee = n.expression;
        if ((ts.isIdentifier(callee) && callee.text === 'require') || callee.kind === ts.SyntaxKind.ImportKeyword) add(n.arguments[0].text, false);
      } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
        add(n.argument.literal.text, true);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

/** The folder of a src/ file ('.' for the files at src/'s top). */
export function folderOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts[1] : '.';
}

export function floorOf(folder: string): number {
  return FLOORS.findIndex((f) => f.includes(folder));
}

/** Strongly connected components with more than one member (Tarjan). */
export function cycles(edges: Array<[string, string]>): string[][] {
  const next = new Map<string, string[]>();
  for (const [a, b] of edges) {
    if (a === b) continue;
    if (!next.has(a)) next.set(a, []);
    next.get(a)!.push(b);
    if (!next.has(b)) next.set(b, []);
  }
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v)!) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const v of next.keys()) if (!idx.has(v)) strong(v);
  return out;
}

function lineOf(sf: ts.SourceFile, pos: number): number {
  return sf.getLineAndCharacterOfPosition(pos).line + 1;
}

/** Functions (nested ones counted inside their parent too, as ESLint's max-lines-per-function) and classes. */
export function sizes(files: string[]): { functions: Sized[]; classes: Sized[] } {
  const functions: Sized[] = [];
  const classes: Sized[] = [];
  for (const file of files) {
    const sf = parse(file);
    const visit = (n: ts.Node) => {
      const span = () => lineOf(sf, n.getEnd()) - lineOf(sf, n.getStart(sf)) + 1;
      if (ts.isClassDeclaration(n) || ts.isClassExpression(n)) {
        classes.push({ file, name: n.name?.text ?? '(class)', line: lineOf(sf, n.getStart(sf)), lines: span() });
      } else if (ts.isFunctionLike(n) && 'body' in n && n.body) {
        const name =
          n.name && (ts.isIdentifier(n.name) || ts.isStringLiteral(n.name)) ? n.name.text : ts.isVariableDeclaration(n.parent) && ts.isIdentifier(n.parent.name) ? n.parent.name.text : '(anonymous)';
        functions.push({ file, name, line: lineOf(sf, n.getStart(sf)), lines: span() });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return { functions, classes };
}

/** Folders of src/ whose modules src/api may import for types only (issue 13: handlers reach services through backend interfaces). */
export const SERVICE_FOLDERS = ['containers', 'images', 'network', 'volumes', 'builder', 'cgroups', 'runtime', 'host'];

/** Value (not type-only) imports from src/api of a module in one of SERVICE_FOLDERS. */
export function apiServiceImports(imps: Import[]): Import[] {
  return imps.filter((i) => folderOf(i.from) === 'api' && !i.typeOnly && SERVICE_FOLDERS.includes(folderOf(i.to)));
}

/**
 * Files that load a compiled addon: `require` of a computed path (the loader joins the build
 * folder and the file name) or of a literal ending in .node, or `process.dlopen`.
 */
export function addonLoaders(files: string[]): string[] {
  return files.filter((file) => {
    let loads = false;
    const visit = (n: ts.Node) => {
      if (ts.isCallExpression(n)) {
        const callee = n.expression;
        const arg = n.arguments[0];
        if (ts.isIdentifier(callee) && callee.text === 'require' && arg) {
          const literal = ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg);
          if (!literal || arg.text.endsWith('.node')) loads = true;
        } else if (ts.isPropertyAccessExpression(callee) && callee.name.text === 'dlopen' && ts.isIdentifier(callee.expression) && callee.expression.text === 'process') {
          loads = true;
        }
      }
      if (!loads) ts.forEachChild(n, visit);
    };
    visit(parse(file));
    return loads;
  });
}

/** A report for people: `node -e "require('./dist/test/helpers/shape').report()"` or the shape test's output. */
export function report(): string {
  const files = sourceFiles('src');
  const imps = imports(files);
  const lines: string[] = [];
  const folderEdges = imps.map((i) => [folderOf(i.from), folderOf(i.to)] as [string, string]).filter(([a, b]) => a !== b);
  lines.push(`folder cycles: ${JSON.stringify(cycles(folderEdges))}`);
  lines.push(`file cycles: ${JSON.stringify(cycles(imps.map((i) => [i.from, i.to])))}`);
  const up = imps.filter((i) => floorOf(folderOf(i.to)) >= floorOf(folderOf(i.from)) && folderOf(i.to) !== folderOf(i.from));
  lines.push(`imports not downwards: ${up.length}`);
  for (const i of up) lines.push(`  ${i.from} -> ${i.to}${i.typeOnly ? ' (type)' : ''}`);
  const noFloor = [...new Set(files.map(folderOf))].filter((f) => floorOf(f) < 0);
  if (noFloor.length) lines.push(`folders without a floor: ${noFloor.join(', ')}`);
  const api = apiServiceImports(imps);
  lines.push(`value imports of services from src/api: ${api.length}`);
  for (const i of api) lines.push(`  ${i.from} -> ${i.to}`);
  const { functions, classes } = sizes([...files, ...sourceFiles('cli')]);
  for (const f of functions.filter((x) => x.lines > 120).sort((a, b) => b.lines - a.lines)) lines.push(`function ${f.file}:${f.line} ${f.name} ${f.lines}`);
  for (const c of classes.filter((x) => x.lines > 450).sort((a, b) => b.lines - a.lines)) lines.push(`class ${c.file}:${c.line} ${c.name} ${c.lines}`);
  lines.push(`addon loaders: ${addonLoaders(files).join(', ')}`);
  return lines.join('\n');
}
