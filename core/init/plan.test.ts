import { describe, expect, it } from 'vitest';
import { uniqueNames } from '../config/discover.js';
import { meaningfulName } from './plan.js';
import { syncRule } from './skaffold.js';

describe('service names', () => {
  it('come from the nearest directory that is not a generic name', () => {
    expect(uniqueNames(['src/cartservice/src', 'src/emailservice', 'services/payments/docker', 'apps/web/app'], 'shop')).toEqual(['cartservice', 'emailservice', 'payments', 'web']);
    expect(meaningfulName('src/cartservice/src')).toBe('cartservice');
  });

  it('are told apart by their meaningful parents, then by a number', () => {
    expect(uniqueNames(['services/api', 'tools/api', 'src/web/src'], 'shop')).toEqual(['services-api', 'tools-api', 'web']);
    // Meaningful names alike: the whole paths tell them apart.
    expect(uniqueNames(['services/api', 'src/api/src'], 'shop')).toEqual(['services-api', 'src-api-src']);
    expect(uniqueNames(['a/b', 'A/b'], 'shop')).toEqual(['a-b', 'a-b-2']);
    // Only generic names: the directory names themselves; the root is the project.
    expect(uniqueNames(['', 'src'], 'shop')).toEqual(['shop', 'src']);
  });
});

describe('Skaffold manual sync rules', () => {
  it('keep the glob and put files where Skaffold puts them', () => {
    // Skaffold: src/lib/a.js → /app/src/lib/a.js; devloop: <to>/<path below "src"> → to = /app/src.
    expect(syncRule({ src: 'src/**/*.js', dest: '/app' })).toEqual({ rule: { from: 'src/**/*.js', to: '/app/src' } });
    expect(syncRule({ src: 'src/**/*.js', dest: '/app', strip: 'src/' })).toEqual({ rule: { from: 'src/**/*.js', to: '/app' } });
    expect(syncRule({ src: './web/static/*.css', dest: '/srv', strip: 'web' })).toEqual({ rule: { from: 'web/static/*.css', to: '/srv/static' } });
    expect(syncRule({ src: '*.py', dest: '/code' })).toEqual({ rule: { from: '*.py', to: '/code' } });
    expect(syncRule({ src: 'static/**', dest: '.' }, '/app')).toEqual({ rule: { from: 'static/**', to: '/app/static' } });
  });

  it('say why one cannot be carried over', () => {
    expect(syncRule({ src: 'static/**', dest: '.' })).toEqual({ problem: 'destination "." is relative and the Dockerfile sets no absolute WORKDIR; not carried over' });
    expect(syncRule({ src: 'src/**/*.js', dest: '/app', strip: 'lib/' })).toEqual({ problem: 'strip "lib/" is not a leading directory of "src/**/*.js"; not carried over' });
  });
});
