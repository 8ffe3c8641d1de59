import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExternalError, UserError } from '../errors.js';

/** Credentials in the shape the Docker Engine API expects for X-Registry-Auth. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface ImageRef {
  /** Registry host[:port], e.g. "127.0.0.1:5000". */
  registry: string;
  /** Repository path inside the registry, e.g. "shop/orders". */
  repository: string;
  tag: string;
}

/** Splits "host:5000/shop/orders:abc" into its parts (the first component is a registry when it has '.' or ':' or is localhost). */
export function parseImageRef(ref: string): ImageRef {
  const at = ref.indexOf('@');
  const withoutDigest = at >= 0 ? ref.slice(0, at) : ref;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const lastColon = withoutDigest.lastIndexOf(':');
  const hasTag = lastColon > lastSlash;
  const name = hasTag ? withoutDigest.slice(0, lastColon) : withoutDigest;
  const tag = hasTag ? withoutDigest.slice(lastColon + 1) : 'latest';
  const first = name.split('/')[0]!;
  const isRegistry = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (isRegistry) return { registry: first, repository: name.slice(first.length + 1), tag };
  return { registry: 'docker.io', repository: name.includes('/') ? name : `library/${name}`, tag };
}

/** The image name without registry and tag ("127.0.0.1:5000/shop/orders:x" → "shop/orders"), for matching containers. */
export function repositoryOf(ref: string): string {
  const parsed = parseImageRef(ref);
  return parsed.registry === 'docker.io' ? parsed.repository.replace(/^library\//, '') : parsed.repository;
}

function dockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

function keyHost(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/** Runs `docker-credential-<helper> get` with the registry on stdin, as the docker CLI does. */
async function fromCredentialHelper(helper: string, registry: string): Promise<RegistryAuth | undefined> {
  const { execa } = await import('execa');
  const bin = `docker-credential-${helper}`;
  try {
    const { stdout } = await execa(bin, ['get'], { input: registry });
    const creds = JSON.parse(stdout) as { Username?: string; Secret?: string };
    if (!creds.Secret) return undefined;
    // "<token>" as the user name means the secret is an identity token (docker CLI convention).
    if (creds.Username === '<token>') return { identitytoken: creds.Secret, serveraddress: registry };
    return { username: creds.Username, password: creds.Secret, serveraddress: registry };
  } catch (err) {
    const e = err as { code?: string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new UserError(`credential helper ${bin} named in ${dockerConfigPath()} is not installed`, {
        hint: `install ${bin} or remove it from the Docker config`,
      });
    }
    // Helpers answer "credentials not found" on stdout/stderr for unknown registries: anonymous access.
    if (/not found/i.test(`${e.stdout ?? ''}${e.stderr ?? ''}`)) return undefined;
    throw new ExternalError(`${bin} get ${registry} failed: ${e.stderr ?? (err as Error).message}`, { cause: err });
  }
}

/** Credentials for `registry` from Docker's config.json (inline auths, credHelpers, credsStore); undefined = anonymous. */
export async function registryAuth(registry: string): Promise<RegistryAuth | undefined> {
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(dockerConfigPath(), 'utf8')) as DockerConfigFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read ${dockerConfigPath()}: ${(err as Error).message}`, { hint: 'fix or remove the Docker config file' });
  }
  const helper = config.credHelpers?.[registry];
  if (helper) return fromCredentialHelper(helper, registry);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (keyHost(key) !== registry) continue;
    if (entry.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: registry };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: registry };
    }
    if (entry.username) return { username: entry.username, password: entry.password, serveraddress: registry };
  }
  if (config.credsStore) return fromCredentialHelper(config.credsStore, registry);
  return undefined;
}

/** Docker treats loopback registries as plain HTTP; everything else is HTTPS. */
export function registryBaseUrl(registry: string): string {
  const host = registry.replace(/:\d+$/, '');
  const insecure = host === 'localhost' || /^127\./.test(host) || host === '[::1]' || (process.env.DEVLOOP_INSECURE_REGISTRIES ?? '').split(',').includes(registry);
  return `${insecure ? 'http' : 'https'}://${registry}`;
}

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

function basicHeader(auth: RegistryAuth | undefined): string | undefined {
  if (!auth?.username) return undefined;
  return `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
}

/** Follows a registry's Bearer challenge (token endpoint) for pull access to `repository`. */
async function bearerToken(challenge: string, repository: string, auth: RegistryAuth | undefined): Promise<string | undefined> {
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
  if (!params.realm) return undefined;
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  url.searchParams.set('scope', `repository:${repository}:pull`);
  const headers: Record<string, string> = {};
  const basic = basicHeader(auth);
  if (basic) headers.authorization = basic;
  const res = await fetch(url, { headers });
  if (!res.ok) return undefined;
  const body = (await res.json()) as { token?: string; access_token?: string };
  return body.token ?? body.access_token;
}

/** Whether `ref` (with a registry) has a manifest in its registry: a HEAD on /v2/<repo>/manifests/<tag>. */
export async function existsInRegistry(ref: string, auth?: RegistryAuth): Promise<boolean> {
  const { registry, repository, tag } = parseImageRef(ref);
  const url = `${registryBaseUrl(registry)}/v2/${repository}/manifests/${tag}`;
  const headers: Record<string, string> = { accept: MANIFEST_TYPES };
  const basic = basicHeader(auth);
  if (basic) headers.authorization = basic;
  let res: Response;
  try {
    res = await fetch(url, { method: 'HEAD', headers });
    if (res.status === 401) {
      const challenge = res.headers.get('www-authenticate') ?? '';
      if (/^bearer/i.test(challenge)) {
        const token = await bearerToken(challenge, repository, auth);
        if (token) res = await fetch(url, { method: 'HEAD', headers: { ...headers, authorization: `Bearer ${token}` } });
      }
    }
  } catch (err) {
    throw new ExternalError(`HEAD ${url} failed: ${(err as Error).message}`, {
      hint: `is the registry ${registry} running and reachable?`,
      cause: err,
    });
  }
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  if (res.status === 401 || res.status === 403) {
    throw new UserError(`registry ${registry} refused access to ${repository} (HTTP ${res.status})`, {
      hint: `log in with \`docker login ${registry}\``,
    });
  }
  throw new ExternalError(`HEAD ${url} answered HTTP ${res.status}`);
}
