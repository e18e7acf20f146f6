/**
 * Enrollment tokens, modelled on `kubeadm join`: one string carries the token
 * id, its secret, and the sha256 fingerprint of the coordinator's CA, so the
 * worker can check it is talking to the right coordinator before it reveals
 * the secret.
 *
 *   const t = parseEnrollmentToken('gg1.k3x9a2m4.<secret>.<fingerprint>');
 *   formatEnrollmentToken({ id, secret, caFingerprint });
 */
import { GridError } from './errors.js';

const PREFIX = 'gg1';
const ID = /^[a-z0-9]{8}$/;
const SECRET = /^[A-Za-z0-9_-]{22}$/; // 128 random bits, base64url
const FINGERPRINT_B64 = /^[A-Za-z0-9_-]{43}$/; // 256 bits, base64url

export interface EnrollmentToken {
  id: string;
  secret: string;
  /** Lowercase hex sha256 of the coordinator CA certificate (DER). */
  caFingerprint: string;
}

export function formatEnrollmentToken(t: EnrollmentToken): string {
  const fp = hexToBase64url(t.caFingerprint);
  return [PREFIX, t.id, t.secret, fp].join('.');
}

export function parseEnrollmentToken(text: string): EnrollmentToken {
  const parts = text.trim().split('.');
  const [prefix, id, secret, fp] = parts;
  if (parts.length !== 4 || prefix !== PREFIX || !ID.test(id!) || !SECRET.test(secret!) || !FINGERPRINT_B64.test(fp!)) {
    throw new GridError(
      'GG_ERR_TOKEN_MALFORMED',
      'enrollment token is malformed: expected gg1.<8-char id>.<22-char secret>.<43-char CA fingerprint>, as printed by `gogrid token create`',
    );
  }
  return { id: id!, secret: secret!, caFingerprint: base64urlToHex(fp!) };
}

// btoa/atob, not Node's Buffer: the renderer bundles protocol/.
/**
 * How a CA fingerprint is shown to people, everywhere: `sha256:` and the 43
 * characters an enrollment token ends with, so the two compare by eye.
 */
export function displayFingerprint(hex: string): string {
  return `sha256:${hexToBase64url(hex)}`;
}

function hexToBase64url(hex: string): string {
  const binary = String.fromCharCode(...(hex.match(/../g) ?? []).map((byte) => parseInt(byte, 16)));
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function base64urlToHex(text: string): string {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Array.from(binary, (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
}

export const TOKEN_ID_PATTERN = ID;
export const TOKEN_SECRET_PATTERN = SECRET;
