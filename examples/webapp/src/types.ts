/** The small slice of an HTTP request and response that the route handlers need. */
export interface Request {
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  headers: Record<string, string | undefined>;
  body?: unknown;
}

export interface Response<T = unknown> {
  status: number;
  body: T;
}

export function json<T>(status: number, body: T): Response<T> {
  return { status, body };
}
