import { createHmac, timingSafeEqual } from "crypto";

export interface Session {
  userId: string;
  expiresAt: number;
}

const TOKEN_SEPARATOR = ".";

/** Sign a session so that it can be handed to a client as a bearer token. */
export function issueToken(session: Session, secret: string): string {
  const payload = Buffer.from(JSON.stringify(session)).toString("base64url");
  return payload + TOKEN_SEPARATOR + sign(payload, secret);
}

/** Return the session of a token, or null when it is malformed, forged or expired. */
export function verifyToken(token: string, secret: string, now: number = Date.now()): Session | null {
  const parts = token.split(TOKEN_SEPARATOR);
  if (parts.length !== 2) {
    return null;
  }
  const [payload, signature] = parts;
  const expected = Buffer.from(sign(payload, secret));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return null;
  }
  let session: Session;
  try {
    session = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  if (typeof session.userId !== "string" || session.expiresAt <= now) {
    return null;
  }
  return session;
}

/** Extract the token from an `Authorization: Bearer ...` header. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) {
    return null;
  }
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return match ? match[1] : null;
}

function sign(payload: string, secret: string): string {
  return createHmac("sha256", secret).update(payload).digest("base64url");
}
