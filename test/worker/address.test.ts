import { describe, expect, it } from 'vitest';
import { isGridError } from '../../src/protocol/errors.js';
import { parseCoordinatorAddress } from '../../src/worker/address.js';

describe('parseCoordinatorAddress', () => {
  it.each([
    ['grid.example.com:8443', 'grid.example.com', 8443],
    ['grid.example.com', 'grid.example.com', 8443],
    ['  grid.example.com:9443  ', 'grid.example.com', 9443],
    ['localhost', 'localhost', 8443],
    ['127.0.0.1:9000', '127.0.0.1', 9000],
    ['10.0.0.5', '10.0.0.5', 8443],
    ['[::1]:8443', '::1', 8443],
    ['[::1]', '::1', 8443],
    ['[fe80::1:2]:1', 'fe80::1:2', 1],
    ['my_host-2.lan:65535', 'my_host-2.lan', 65535],
    ['grid.example.com.:443', 'grid.example.com.', 443],
  ])('%j → %s port %i', (text, host, port) => {
    expect(parseCoordinatorAddress(text)).toEqual({ host, port });
  });

  it.each([
    ['', 'it is empty'],
    ['   ', 'it is empty'],
    [':8443', 'the host is empty'],
    ['https://grid.example.com:8443', 'leave out the scheme'],
    ['quic://grid.example.com', 'leave out the scheme'],
    ['grid.example.com:0', 'port "0" is not a number from 1 to 65535'],
    ['grid.example.com:65536', 'port "65536"'],
    ['grid.example.com:', 'port ""'],
    ['grid.example.com:-1', 'port "-1"'],
    ['grid.example.com:0x20', 'port "0x20"'],
    ['grid.example.com:1e3', 'port "1e3"'],
    ['grid.example.com:8443/path', 'port "8443/path"'],
    ['grid.example.com/path', 'is not a host name or IP address'],
    ['user@grid.example.com', 'is not a host name or IP address'],
    ['grid example', 'is not a host name or IP address'],
    ['-grid.example.com', 'is not a host name or IP address'],
    ['a..b', 'is not a host name or IP address'],
    ['::1', 'put an IPv6 address in brackets'],
    ['fe80::1:8443', 'put an IPv6 address in brackets'],
    ['[grid.example.com]:8443', 'in brackets is not an IPv6 address'],
    ['[::1]:', 'port ""'],
    ['[::1]8443', 'is not a host name or IP address'],
  ])('rejects %j (%s)', (text, why) => {
    let caught: unknown;
    try {
      parseCoordinatorAddress(text);
    } catch (error) {
      caught = error;
    }
    expect(isGridError(caught, 'GG_ERR_CONFIG_INVALID')).toBe(true);
    const message = (caught as Error).message;
    expect(message).toContain(why);
    expect(message).toContain(JSON.stringify(text));
    // Every rejection shows the expected form.
    expect(message).toContain('expected host[:port], e.g. grid.example.com:8443, 10.0.0.5 or [::1]:8443');
  });
});
