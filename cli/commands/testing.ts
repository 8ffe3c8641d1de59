import { afterEach } from 'vitest';
import { TempRepo } from '../../core/workspace/temp-repo.js';

/**
 * For a test file: a function that makes a temporary git repository with `files`, removed after each test. Call it
 * once, at the top level of the file.
 */
export function tempRepos(): (files: Record<string, string>) => TempRepo {
  const repos: TempRepo[] = [];
  afterEach(() => {
    while (repos.length) repos.pop()!.remove();
  });
  return (files) => {
    const repo = TempRepo.create();
    repos.push(repo);
    return repo.write(files);
  };
}

/** Two services, one of them depending on a library through a go.mod `replace`; no devloop.yaml. */
export const SHOP_FILES: Readonly<Record<string, string>> = {
  'services/orders/Dockerfile': 'FROM scratch\nCOPY . /\n',
  'services/orders/go.mod': 'module orders\nreplace common => ../../libs/common\n',
  'services/payments/Dockerfile': 'FROM scratch\nCOPY . /\n',
  'libs/common/go.mod': 'module common\n',
  'libs/common/x.go': 'package common\n',
};
