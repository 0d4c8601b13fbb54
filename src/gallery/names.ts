import { UNKNOWN } from '../types';

/** Longest identity name, in UTF-16 code units: a name, not a note. */
export const MAX_NAME_LENGTH = 200;

/**
 * Why `name` cannot name an identity, or undefined when it can. The one rule for every way a name comes in
 * (CLI, gRPC, the admin API, node commands, imports), so that none of them lets through what another refuses.
 */
export function identityNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.trim() === '') return 'identity name must be a non-empty string';
  if (name.length > MAX_NAME_LENGTH) return `identity name is longer than ${MAX_NAME_LENGTH} characters`;
  if (name === UNKNOWN) return `'${UNKNOWN}' is reserved for faces that match nobody`;
  // A line break or NUL in a name garbles every log line and list that shows it, and breaks MQTT topics.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'identity name must not contain control characters';
  return undefined;
}
