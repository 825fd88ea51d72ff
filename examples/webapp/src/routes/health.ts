import { Request, Response, json } from "../types";

const startedAt = Date.now();

/** GET /healthz: liveness, and the version the load balancer shows. */
export function health(_req: Request, version: string, now: number = Date.now()): Response {
  return json(200, { status: "ok", version, uptimeSeconds: Math.floor((now - startedAt) / 1000) });
}
