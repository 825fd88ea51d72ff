import { Request, Response, json } from "../types";
import { bearerToken, verifyToken } from "../services/auth";

export interface User {
  id: string;
  email: string;
  name: string;
}

export interface UserStore {
  get(id: string): User | undefined;
  list(offset: number, limit: number): User[];
}

const MAX_PAGE_SIZE = 100;

/** GET /users?page=N&per_page=M */
export function listUsers(req: Request, store: UserStore, secret: string): Response {
  if (!verifyToken(bearerToken(req.headers["authorization"]) ?? "", secret)) {
    return json(401, { error: "unauthorized" });
  }
  const page = Math.max(1, parseInt(req.query["page"] ?? "1", 10) || 1);
  const perPage = Math.min(MAX_PAGE_SIZE, Math.max(1, parseInt(req.query["per_page"] ?? "20", 10) || 20));
  return json(200, { page, perPage, users: store.list((page - 1) * perPage, perPage) });
}

/** GET /users/:id */
export function getUser(req: Request, store: UserStore, secret: string): Response {
  if (!verifyToken(bearerToken(req.headers["authorization"]) ?? "", secret)) {
    return json(401, { error: "unauthorized" });
  }
  const user = store.get(req.params["id"]);
  return user ? json(200, user) : json(404, { error: `no user ${req.params["id"]}` });
}
