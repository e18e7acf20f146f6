/**
 * The one registry of GoGrid error codes, shared by the wire `error` frame,
 * the HTTP API and the CLI's one-line messages.
 *
 *   throw new GridError('GG_ERR_TOKEN_EXPIRED', 'token abc123 expired at 2026-01-01T00:00:00Z');
 *
 * `docs/errors.md` lists every code; a test keeps the two in sync both ways.
 */

interface ErrorCodeInfo {
  /** HTTP status when the error crosses the HTTP API. */
  status: number;
  /** Whether trying the same thing again later can succeed (drives reconnect and retry). */
  retryable: boolean;
  /** Short description for the docs table. */
  summary: string;
}

export const ERROR_CODES = {
  GG_ERR_FRAME_TOO_LARGE: { status: 413, retryable: false, summary: 'A frame announced a length over the maximum frame size.' },
  GG_ERR_FRAME_INVALID: { status: 400, retryable: false, summary: 'A frame was not valid JSON or did not match its message schema.' },
  GG_ERR_MESSAGE_UNKNOWN: { status: 400, retryable: false, summary: 'A frame carried a message type this side does not know.' },
  GG_ERR_MESSAGE_UNEXPECTED: { status: 400, retryable: false, summary: 'A known message arrived in a state where it is not allowed (e.g. heartbeat before hello).' },
  GG_ERR_PROTOCOL_VERSION_UNSUPPORTED: { status: 426, retryable: false, summary: 'The peer speaks a protocol version this side does not support.' },
  GG_ERR_TOO_MANY_CONNECTIONS: { status: 503, retryable: true, summary: 'The coordinator is at max_connections.' },
  GG_ERR_RATE_LIMITED: { status: 429, retryable: true, summary: 'Too many failed attempts (wrong enrollment tokens or API keys) from this address or for this token; the message and the Retry-After header say when to try again.' },
  GG_ERR_UNAUTHENTICATED: { status: 401, retryable: false, summary: 'No valid client certificate or API key was presented.' },
  GG_ERR_KEY_SCOPE: { status: 403, retryable: false, summary: 'The API key is valid, but its scope does not allow this route (an inference key may call only the OpenAI-compatible routes).' },
  GG_ERR_LAST_ADMIN_KEY: { status: 409, retryable: false, summary: 'Revoking this key would leave the coordinator without an admin key; create another admin key first.' },
  GG_ERR_WORKER_REVOKED: { status: 403, retryable: false, summary: 'This worker was revoked by an administrator.' },
  GG_ERR_WORKER_UNKNOWN: { status: 403, retryable: false, summary: 'The certificate is valid but names a worker the coordinator has no record of.' },
  GG_ERR_SESSION_REPLACED: { status: 409, retryable: false, summary: 'Another connection presented the same worker certificate; the newest connection wins.' },
  GG_ERR_HEARTBEAT_TIMEOUT: { status: 408, retryable: true, summary: 'No heartbeat arrived within heartbeat_timeout_secs.' },
  GG_ERR_SHUTTING_DOWN: { status: 503, retryable: true, summary: 'The coordinator is stopping.' },
  GG_ERR_TOKEN_MALFORMED: { status: 400, retryable: false, summary: 'The enrollment token is not of the form gg1.<id>.<secret>.<ca-fingerprint>.' },
  GG_ERR_TOKEN_INVALID: { status: 401, retryable: false, summary: 'The enrollment token id or secret is wrong.' },
  GG_ERR_TOKEN_EXPIRED: { status: 401, retryable: false, summary: 'The enrollment token is past its expiry.' },
  GG_ERR_TOKEN_USED_UP: { status: 401, retryable: false, summary: 'The enrollment token has no uses left.' },
  GG_ERR_TOKEN_REVOKED: { status: 401, retryable: false, summary: 'The enrollment token was revoked.' },
  GG_ERR_CA_MISMATCH: { status: 400, retryable: false, summary: "The coordinator's CA does not match the fingerprint in the token; the secret was not sent." },
  GG_ERR_CSR_INVALID: { status: 400, retryable: false, summary: 'The certificate signing request is malformed or its signature does not verify.' },
  GG_ERR_NOT_ENROLLED: { status: 400, retryable: false, summary: 'The worker has no stored identity and no token was given.' },
  GG_ERR_CLOCK_SKEW: { status: 400, retryable: true, summary: "A certificate is expired or not yet valid at this machine's time: most often a clock that is off (the worker retries, and connects once the clock is right)." },
  GG_ERR_CONNECTION_CLOSED: { status: 503, retryable: true, summary: 'The QUIC connection or its control stream closed before the frame could be sent.' },
  GG_ERR_COORDINATOR_UNREACHABLE: { status: 503, retryable: true, summary: 'The coordinator did not answer (network, firewall, or not running).' },
  GG_ERR_ADDRESS_UNAVAILABLE: { status: 503, retryable: false, summary: "The coordinator cannot listen on its address and port: another program holds the port (UDP for QUIC, TCP for HTTPS), or the address is not one of this machine's." },
  GG_ERR_DATABASE_UNREACHABLE: { status: 503, retryable: true, summary: "The coordinator cannot connect to its PostgreSQL database (not running, wrong host, user, password or database name); the message names the URL, password masked." },
  GG_ERR_OUT_OF_RESOURCES: { status: 503, retryable: true, summary: "The coordinator's disk is full, or its database ran out of memory or connections (the worker's disk, from its control endpoint): the request changed nothing, and works again once there is room." },
  GG_ERR_CONFIG_INVALID: { status: 400, retryable: false, summary: 'A configuration file or option has a bad or unknown key or value.' },
  GG_ERR_JOB_NOT_FOUND: { status: 404, retryable: false, summary: 'No job with that id.' },
  GG_ERR_JOB_TIMEOUT: { status: 504, retryable: true, summary: 'The job ran past its timeout and its process was killed.' },
  GG_ERR_JOB_CANCELED: { status: 409, retryable: false, summary: 'The job was canceled.' },
  GG_ERR_JOB_LEASE_STALE: { status: 409, retryable: false, summary: 'A result or progress report named a lease that is no longer current; it was ignored.' },
  GG_ERR_EXECUTOR_CRASHED: { status: 500, retryable: true, summary: 'The job process exited without a result (crash, out of memory, killed).' },
  GG_ERR_WORKER_BUSY: { status: 503, retryable: true, summary: 'The worker had no free slot for an assigned job; it goes back to the queue.' },
  GG_ERR_WORKER_OUT_OF_MEMORY: { status: 503, retryable: true, summary: 'The worker has not enough free memory (RAM, or VRAM on its GPU) for the model and its context now; the job is tried on another worker.' },
  GG_ERR_GPU_UNAVAILABLE: { status: 503, retryable: true, summary: 'The GPU backend the job asks for is missing or failed on this worker (a driver error, a lost device) and the job does not allow the CPU (requirements.gpu.fallback); it is tried on another worker.' },
  GG_ERR_EXECUTOR_UNAVAILABLE: { status: 400, retryable: false, summary: 'No executor for this job kind on this worker.' },
  GG_ERR_OUTPUT_INVALID: { status: 502, retryable: true, summary: "A worker's result is not what the job's kind produces (e.g. not a tensor map for an ONNX job); the attempt fails and the job may run elsewhere." },
  GG_ERR_INPUT_INVALID: { status: 400, retryable: false, summary: "The job input does not match the model's inputs (names, types or shapes), or a tensor's data does not match its dims." },
  GG_ERR_MODEL_UNSUPPORTED: { status: 400, retryable: false, summary: "The model cannot be run by this executor (e.g. inputs that are not tensors), the runtime could not load it, or the job's kind needs another model format (an llm job on an ONNX model)." },
  GG_ERR_MODEL_NOT_FOUND: { status: 404, retryable: false, summary: 'No model with that sha256, name or alias is stored on the coordinator.' },
  GG_ERR_MODEL_HASH_MISMATCH: { status: 502, retryable: true, summary: 'Downloaded model bytes do not hash to the sha256 they were requested by; the file was discarded, never used.' },
  GG_ERR_NO_WORKER_AVAILABLE: { status: 503, retryable: true, summary: 'No connected worker can run this request (none runs its kind or model, or none fits its requirements); the message says why.' },
  GG_ERR_MODEL_INVALID: { status: 400, retryable: false, summary: 'An uploaded file is not a model the grid runs: neither ONNX nor GGUF, or a GGUF file that is malformed or truncated; nothing was stored.' },
  GG_ERR_MODEL_NAME_TAKEN: { status: 409, retryable: false, summary: 'The model name or alias is already a name or alias of another model; nothing was changed.' },
  GG_ERR_STREAM_BROKEN: { status: 502, retryable: true, summary: "A streamed answer's worker was lost and the next attempt could not continue exactly where it stopped; the stream ends here rather than splice in other text." },
  GG_ERR_IDEMPOTENCY_KEY_REUSED: { status: 422, retryable: false, summary: 'The Idempotency-Key of a submit was sent before (within a day) with a different request; a new request needs a new key.' },
  GG_ERR_BAD_REQUEST: { status: 400, retryable: false, summary: 'An API request body or parameter is invalid.' },
  GG_ERR_NOT_FOUND: { status: 404, retryable: false, summary: 'The named worker, token or resource does not exist.' },
  GG_ERR_HOST_REFUSED: { status: 403, retryable: false, summary: "A request to the worker's loopback control endpoint named another Host or Origin (DNS rebinding or a cross-site page); it was refused." },
  GG_ERR_WORKER_NOT_RUNNING: { status: 503, retryable: true, summary: 'No worker is running with that data dir (no control.json there, or its process is gone).' },
  GG_ERR_INTERNAL: { status: 500, retryable: true, summary: 'A bug: an invariant broke. The log has the details.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/** An expected failure with a code, as opposed to a bug (plain Error) or a cancellation (AbortError). */
export class GridError extends Error {
  override readonly name = 'GridError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSecs?: number },
  ) {
    super(message, options);
    this.retryAfterSecs = options?.retryAfterSecs;
  }

  /** When trying again may succeed (HTTP `Retry-After`), where the side that refused knows. */
  readonly retryAfterSecs: number | undefined;

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isGridError(e: unknown, code?: ErrorCode): e is GridError {
  return e instanceof GridError && (code === undefined || e.code === code);
}
