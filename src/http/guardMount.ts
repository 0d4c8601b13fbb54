import type { apiGuard } from './apiGuard';

type Guard = ReturnType<typeof apiGuard>;
type GuardedRequest = Parameters<Guard>[0];
type Middleware = (req: GuardedRequest, res: unknown, next: (err?: unknown) => void) => void;

interface RouterStack {
  stack: { handle: unknown }[];
}

/** What the guard needs of an Express app: `use`, its handler stack, and the app it is mounted in. */
export interface ExpressApp {
  use(m: Middleware): void;
  _router?: RouterStack;
  parent?: ExpressApp;
}

/**
 * Puts `guard` in front of every route at `prefix` or under it, as the first handler of the app that first
 * sees each request (the one `app` is mounted in, and so on up), so that it runs before any body parser of
 * the apps mounted there. Returns a function that takes it out again.
 */
export function mountGuardInFront(app: ExpressApp, prefix: string, guard: Guard): () => void {
  const root = rootOf(app);
  const guarded = prefix.toLowerCase();
  const middleware: Middleware = (req, res, next) => {
    // First in line, before Express has added req.path. Its routes match without regard to case, and on the
    // path of a full URL too (`POST http://host/faces/…`, as sent to a proxy): so must the guard.
    const at = pathOf(req.url ?? '').toLowerCase();
    if (at !== guarded && !at.startsWith(`${guarded}/`)) return next();
    guard(req, res as Parameters<Guard>[1], next);
  };
  root.use(middleware);
  moveToFront(root._router, middleware);
  return () => {
    const stack = root._router?.stack ?? [];
    const at = stack.findIndex((layer) => layer.handle === middleware);
    if (at >= 0) stack.splice(at, 1);
  };
}

/** '/faces', 'faces/' and '/faces/' are one prefix; '' and '/' are refused (they would guard every route). */
export function guardedPrefix(path: string | undefined): string | undefined {
  const trimmed = (path ?? '/faces').trim().replace(/\/+$/, '');
  const withSlash = trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  return withSlash.length > 1 && !/[\s?#*:]/.test(withSlash) ? withSlash : undefined;
}

function pathOf(url: string): string {
  try {
    return new URL(url, 'http://localhost').pathname;
  } catch {
    return url.split('?')[0];
  }
}

function rootOf(app: ExpressApp): ExpressApp {
  return app.parent ? rootOf(app.parent) : app;
}

/**
 * Express runs handlers in the order they were added, and routes may be added before or after the guard
 * (e.g. Node-RED's http-in nodes, in deploy order): the guard goes first, whatever came before it.
 */
function moveToFront(router: RouterStack | undefined, handler: unknown): void {
  const stack = router?.stack;
  if (!stack) return;
  const at = stack.findIndex((layer) => layer.handle === handler);
  if (at > 0) stack.unshift(...stack.splice(at, 1));
}
