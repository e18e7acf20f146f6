import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadCoordinatorConfig, parseCoordinatorConfig, type ConfigOverrides } from '../../src/coordinator/config.js';
import { isGridError } from '../../src/protocol/index.js';
import fc from 'fast-check';
import { stringify as stringifyToml } from 'smol-toml';
import { hostileNumber, hostileString } from '../helpers/hostile.js';

// Verbatim from the deployed coordinator (seeds/coordinator-deployed.md).
const SEED = `[server]
bind_addr = "0.0.0.0"
port = 8443
max_connections = 10000
heartbeat_interval_secs = 30
heartbeat_timeout_secs = 90

[database]
url = "postgres://gogrid:changeme@localhost/gogrid"
max_connections = 10

[redis]
url = "redis://localhost:6379"
`;

/** The GG_ERR_CONFIG_INVALID message of parsing `text`; fails the test if it parses. */
function problemsOf(text: string, overrides?: ConfigOverrides): string {
  try {
    parseCoordinatorConfig(text, 'coordinator.toml', overrides);
  } catch (e) {
    if (isGridError(e, 'GG_ERR_CONFIG_INVALID')) return e.message;
    throw e;
  }
  throw new Error('expected GG_ERR_CONFIG_INVALID');
}

describe('coordinator.toml', () => {
  it('reads the seed file as deployed', () => {
    const { config, notices } = parseCoordinatorConfig(SEED, 'coordinator.toml');
    expect(config).toEqual({
      server: { ...DEFAULT_CONFIG.server, bindAddr: '0.0.0.0', port: 8443, maxConnections: 10000, heartbeatIntervalSecs: 30, heartbeatTimeoutSecs: 90 },
      database: { url: 'postgres://gogrid:changeme@localhost/gogrid', maxConnections: 10 },
      redis: { url: 'redis://localhost:6379' },
      llm: { keepText: false },
    });
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^coordinator\.toml: redis\.url .*does not use Redis/);
  });

  it('fills every missing key from the defaults, without a Redis notice', () => {
    expect(parseCoordinatorConfig('', 'empty.toml')).toEqual({ config: DEFAULT_CONFIG, notices: [] });
    const { config } = parseCoordinatorConfig('[server]\nport = 9000\n', 'c.toml');
    expect(config).toEqual({ ...DEFAULT_CONFIG, server: { ...DEFAULT_CONFIG.server, port: 9000 } });
  });

  it('keeps OpenAI requests’ prompts and answers only when told to', () => {
    expect(DEFAULT_CONFIG.llm.keepText).toBe(false);
    expect(parseCoordinatorConfig('[llm]\nkeep_text = true\n', 'c.toml').config.llm).toEqual({ keepText: true });
  });

  it('accepts decimal heartbeats and every database URL form', () => {
    const text = (url: string) => `[server]\nheartbeat_interval_secs = 0.5\nheartbeat_timeout_secs = 1.5\n[database]\nurl = "${url}"\n`;
    for (const url of ['memory://', 'pglite:///var/lib/gogrid/db', 'pglite://./data', 'postgresql://u:p@db.example:5433/gogrid']) {
      const { config } = parseCoordinatorConfig(text(url), 'c.toml');
      expect(config.database.url).toBe(url);
      expect(config.server.heartbeatIntervalSecs).toBe(0.5);
      expect(config.server.heartbeatTimeoutSecs).toBe(1.5);
    }
  });

  it.each([
    ['an unknown table', '[metrics]\nenabled = true\n', 'coordinator.toml: metrics: unknown key'],
    ['an unknown key', '[server]\nport = 8443\nworkers = 3\n', 'coordinator.toml: server.workers: unknown key'],
    ['a misspelt key', '[database]\nmax_connection = 10\n', 'coordinator.toml: database.max_connection: unknown key'],
    ['a string port', '[server]\nport = "8443"\n', 'coordinator.toml: server.port: must be a port number, not a string'],
    ['port 0', '[server]\nport = 0\n', 'coordinator.toml: server.port: must be from 1 to 65535'],
    ['port 65536', '[server]\nport = 65536\n', 'coordinator.toml: server.port: must be from 1 to 65535'],
    ['a fractional port', '[server]\nport = 8443.5\n', 'coordinator.toml: server.port: must be a whole number'],
    ['a host name as bind_addr', '[server]\nbind_addr = "example.com"\n', 'coordinator.toml: server.bind_addr: must be an IP address'],
    ['zero max_connections', '[server]\nmax_connections = 0\n', 'coordinator.toml: server.max_connections: must be greater than 0'],
    ['a negative pool', '[database]\nmax_connections = -1\n', 'coordinator.toml: database.max_connections: must be greater than 0'],
    ['a zero interval', '[server]\nheartbeat_interval_secs = 0\n', 'coordinator.toml: server.heartbeat_interval_secs: must be greater than 0'],
    ['an infinite timeout', '[server]\nheartbeat_timeout_secs = inf\n', 'coordinator.toml: server.heartbeat_timeout_secs: must be a number of seconds, not Infinity'],
    ['a timeout past any timer', '[server]\nheartbeat_timeout_secs = 10000000\n', 'coordinator.toml: server.heartbeat_timeout_secs: must be at most 86400 (a day)'],
    ['a heartbeat every millisecond', '[server]\nheartbeat_interval_secs = 0.001\n', 'coordinator.toml: server.heartbeat_interval_secs: must be at least 0.1'],
    ['a huge pool', '[database]\nmax_connections = 100000\n', 'coordinator.toml: database.max_connections: must be at most 1000'],
    ['nan as a port', '[server]\nport = nan\n', 'coordinator.toml: server.port: must be a port number, not NaN'],
    ['a date as a port', '[server]\nport = 1979-05-27\n', 'coordinator.toml: server.port: must be a port number, not a date'],
    [
      'timeout equal to interval',
      '[server]\nheartbeat_interval_secs = 30\nheartbeat_timeout_secs = 30\n',
      'coordinator.toml: server.heartbeat_timeout_secs: must be greater than heartbeat_interval_secs (30)',
    ],
    [
      'an interval past the default timeout',
      '[server]\nheartbeat_interval_secs = 120\n',
      'coordinator.toml: server.heartbeat_timeout_secs: must be greater than heartbeat_interval_secs (120) (it defaults to 90)',
    ],
    ['a table where a value belongs', '[server.port]\nx = 1\n', 'coordinator.toml: server.port: must be a port number, not a table'],
    ['a value where a table belongs', 'server = 5\n', 'coordinator.toml: server: must be a table, not a number'],
    ['a redis URL that is a number', '[redis]\nurl = 6379\n', 'coordinator.toml: redis.url: must be a URL, not a number'],
    ['keep_text as a string', '[llm]\nkeep_text = "yes"\n', 'coordinator.toml: llm.keep_text: must be true or false, not a string'],
    ['a sqlite URL', '[database]\nurl = "sqlite:///tmp/x.db"\n', 'coordinator.toml: database.url: must be memory://'],
    ['a pglite URL without a path', '[database]\nurl = "pglite://data"\n', 'coordinator.toml: database.url: must be memory://'],
  ])('rejects %s', (_name, text, expected) => {
    expect(problemsOf(text)).toContain(expected);
  });

  it('reports malformed TOML with its line and column', () => {
    const message = problemsOf('[server]\nport = 8443\nbind_addr = 0.0.0.0\n');
    expect(message).toMatch(/^coordinator\.toml:3:\d+: invalid TOML: /);
    expect(message.split('\n')).toHaveLength(1);
  });

  it('reports every problem at once, one line each', () => {
    const message = problemsOf(
      '[server]\nport = 70000\nheartbeat_interval_secs = 60\nheartbeat_timeout_secs = 45\nextra = 1\n[database]\nurl = "mysql://x"\n',
    );
    expect(message.split('\n').sort()).toEqual([
      'coordinator.toml: database.url: must be memory://, pglite:///abs/dir, pglite://./rel/dir, or postgres://user:password@host/db',
      'coordinator.toml: server.extra: unknown key',
      'coordinator.toml: server.heartbeat_timeout_secs: must be greater than heartbeat_interval_secs (60)',
      'coordinator.toml: server.port: must be from 1 to 65535',
    ]);
  });

  it('lets command-line overrides win over the file', () => {
    const overrides: ConfigOverrides = {
      bindAddr: '127.0.0.1',
      port: 9443,
      databaseUrl: 'memory://',
      maxConnections: 5,
      heartbeatIntervalSecs: 0.5,
      heartbeatTimeoutSecs: 2,
    };
    const { config } = parseCoordinatorConfig(SEED, 'coordinator.toml', overrides);
    expect(config.server).toEqual({ ...DEFAULT_CONFIG.server, bindAddr: '127.0.0.1', port: 9443, maxConnections: 5, heartbeatIntervalSecs: 0.5, heartbeatTimeoutSecs: 2 });
    expect(config.database).toEqual({ url: 'memory://', maxConnections: 10 });
  });

  it('reads public_names, and refuses what is neither a host name nor an address', () => {
    expect(parseCoordinatorConfig('[server]\npublic_names = ["grid.example.com", "203.0.113.7", "2001:db8::1"]\n', 'c.toml').config.server.publicNames).toEqual([
      'grid.example.com',
      '203.0.113.7',
      '2001:db8::1',
    ]);
    expect(problemsOf('[server]\npublic_names = ["grid example", "https://grid.example.com"]\n')).toBe(
      'coordinator.toml: server.public_names.0: must be a host name (grid.example.com) or an IP address\ncoordinator.toml: server.public_names.1: must be a host name (grid.example.com) or an IP address',
    );
    expect(problemsOf('[server]\npublic_names = "grid.example.com"\n')).toBe('coordinator.toml: server.public_names: must be a list of names, not a string');
  });

  it('reads the HTTPS limits per address, and refuses what is not a whole number from 1 to 1000000', () => {
    const { config } = parseCoordinatorConfig('[server]\nmax_https_connections_per_ip = 16\nconnections_per_ip_per_sec = 4\n', 'c.toml');
    expect(config.server).toMatchObject({ maxHttpsConnectionsPerIp: 16, connectionsPerIpPerSec: 4 });
    expect(problemsOf('[server]\nmax_https_connections_per_ip = 0\nconnections_per_ip_per_sec = 2000000\n')).toBe(
      'coordinator.toml: server.max_https_connections_per_ip: must be greater than 0\ncoordinator.toml: server.connections_per_ip_per_sec: must be at most 1000000',
    );
    expect(problemsOf('[server]\nconnections_per_ip_per_sec = 1.5\n')).toBe('coordinator.toml: server.connections_per_ip_per_sec: must be a whole number');
  });

  it('reads an operator certificate for the API as two absolute paths, both or neither', () => {
    const { config } = parseCoordinatorConfig('[server]\napi_cert_file = "/etc/gogrid/fullchain.pem"\napi_key_file = "/etc/gogrid/privkey.pem"\n', 'c.toml');
    expect(config.server.apiCert).toEqual({ certFile: '/etc/gogrid/fullchain.pem', keyFile: '/etc/gogrid/privkey.pem' });
    expect(parseCoordinatorConfig('', 'c.toml').config.server.apiCert).toBeNull();
    expect(problemsOf('[server]\napi_cert_file = "/etc/gogrid/fullchain.pem"\n')).toBe(
      'coordinator.toml: server.api_cert_file: needs api_key_file too: the private key of that certificate (PEM)',
    );
    expect(problemsOf('[server]\napi_cert_file = "fullchain.pem"\napi_key_file = "/k.pem"\n')).toBe('coordinator.toml: server.api_cert_file: must be an absolute path');
  });

  it('checks overrides too, and says they came from the command line', () => {
    expect(problemsOf(SEED, { heartbeatIntervalSecs: 100 })).toBe(
      'coordinator.toml: server.heartbeat_timeout_secs: must be greater than heartbeat_interval_secs (100)',
    );
    expect(problemsOf(SEED, { port: 70000 })).toBe('command line: server.port: must be from 0 to 65535');
    // An override that fixes the file's mistake makes it valid.
    expect(parseCoordinatorConfig('[server]\nport = 0\n', 'c.toml', { port: 8444 }).config.server.port).toBe(8444);
  });

  it('takes port 0 (a free port) from the command line only', () => {
    expect(parseCoordinatorConfig(SEED, 'coordinator.toml', { port: 0 }).config.server.port).toBe(0);
    expect(problemsOf('[server]\nport = 0\n')).toBe('coordinator.toml: server.port: must be from 1 to 65535');
  });

  describe('loadCoordinatorConfig', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'gogrid-config-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('reads a file and names it in errors', async () => {
      const file = join(dir, 'coordinator.toml');
      await writeFile(file, SEED);
      expect((await loadCoordinatorConfig(file)).config.server.port).toBe(8443);
      await writeFile(file, '[server]\nport = -1\n');
      await expect(loadCoordinatorConfig(file)).rejects.toMatchObject({
        code: 'GG_ERR_CONFIG_INVALID',
        message: `${file}: server.port: must be from 1 to 65535`,
      });
    });

    it('uses the defaults and overrides without a file', async () => {
      expect(await loadCoordinatorConfig(undefined)).toEqual({ config: DEFAULT_CONFIG, notices: [] });
      expect((await loadCoordinatorConfig(undefined, { port: 0 })).config.server.port).toBe(0);
    });

    it('reports a file it cannot read', async () => {
      const missing = join(dir, 'nope.toml');
      await expect(loadCoordinatorConfig(missing)).rejects.toMatchObject({
        code: 'GG_ERR_CONFIG_INVALID',
        message: expect.stringMatching(new RegExp(`^${missing}: cannot read: .*ENOENT`)),
      });
    });
  });
});

describe('coordinator.toml with hostile values', () => {
  const KEYS = [
    ['server', 'bind_addr'],
    ['server', 'port'],
    ['server', 'public_names'],
    ['server', 'max_connections'],
    ['server', 'max_https_connections_per_ip'],
    ['server', 'connections_per_ip_per_sec'],
    ['server', 'api_cert_file'],
    ['server', 'api_key_file'],
    ['server', 'heartbeat_interval_secs'],
    ['server', 'heartbeat_timeout_secs'],
    ['database', 'url'],
    ['database', 'max_connections'],
    ['llm', 'keep_text'],
  ] as const;
  // What TOML can hold: hostile strings (NUL, lone surrogates, bidi), numbers (NaN, ±inf, huge, negative, fractional), lists of them, deep nesting.
  const value = fc.oneof(hostileString, hostileNumber, fc.boolean(), fc.array(fc.oneof(hostileString, hostileNumber), { maxLength: 120 }), fc.constant(nestedLists(40)));

  it('are refused with GG_ERR_CONFIG_INVALID naming the key, or taken; never another error', () => {
    fc.assert(
      fc.property(fc.constantFrom(...KEYS), value, ([table, key], v) => {
        let text: string;
        try {
          text = stringifyToml({ [table]: { [key]: v } });
        } catch {
          return; // not expressible in TOML: nothing a file could say
        }
        try {
          parseCoordinatorConfig(text, 'c.toml');
        } catch (e) {
          expect(isGridError(e, 'GG_ERR_CONFIG_INVALID'), String(e)).toBe(true);
          expect((e as Error).message).toContain(`${table}.${key}`);
        }
      }),
      { numRuns: 400 },
    );
  });
});

function nestedLists(depth: number): unknown {
  return depth === 0 ? 1 : [nestedLists(depth - 1)];
}
