import { describe, expect, it } from 'vitest';
import { goModuleProblem, serviceNameProblem } from './names.js';

describe('serviceNameProblem', () => {
  it('accepts DNS-1123 labels that start with a letter', () => {
    for (const ok of ['a', 'orders', 'order-api2', 'x'.repeat(63)]) expect(serviceNameProblem(ok)).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['Orders', /upper-case.*"orders"/],
    ['order_api', /lower-case letters, digits and "-"/],
    ['orders.v1', /lower-case letters, digits and "-"/],
    ['2fa', /start with a letter/],
    ['-api', /start with a letter/],
    ['api-', /end with "-"/],
    ['x'.repeat(64), /64 characters.*at most 63/],
  ])('rejects %j', (name, message) => {
    expect(serviceNameProblem(name)).toMatch(message);
  });
});

describe('goModuleProblem', () => {
  it('accepts module paths', () => {
    for (const ok of ['github.com/acme/shop/services/orders', 'orders', 'example.com/a_b/c-d/v2']) expect(goModuleProblem(ok)).toBeUndefined();
  });
  it.each(['', '/abs', 'trailing/', 'has space/x', 'a//b', 'a/../b', 'a/.hidden'])('rejects %j', (m) => {
    expect(goModuleProblem(m)).toBeDefined();
  });
});
