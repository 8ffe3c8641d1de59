/**
 * The devloop.yaml schema: the single source for the validator (ajv) and for the JSON Schema file editors use
 * (schema/devloop.schema.json, written by `npm run schema`).
 *
 * `x-expected` is an annotation devloop reads to phrase a failed pattern/format check as "expected ...".
 */

const dnsLabel = {
  type: 'string',
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  maxLength: 63,
  'x-expected': 'a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
} as const;

const relativePath = {
  type: 'string',
  minLength: 1,
  'x-expected': 'a path relative to the directory of devloop.yaml',
} as const;

/** DNS-1123 label, as the schema checks names (project, service, developer, namespace). */
export const DNS_LABEL_PATTERN = new RegExp(dnsLabel.pattern);

const service = {
  type: 'object',
  description: 'One buildable service: a Docker build context plus how to deploy and develop it.',
  additionalProperties: false,
  required: ['name', 'path'],
  properties: {
    name: { ...dnsLabel, description: 'Unique service name (DNS-1123 label).' },
    path: { ...relativePath, description: 'Build context, relative to the repository root.' },
    dockerfile: {
      type: 'string',
      minLength: 1,
      description: 'Dockerfile, relative to `path`. Default: Dockerfile.',
    },
    dependsOn: {
      type: 'array',
      description:
        'Repository paths, or names of other services, whose changes also rebuild this service. ' +
        'A service named here is built first. Dependencies found in go.mod and package.json are added automatically.',
      items: { type: 'string', minLength: 1 },
      uniqueItems: true,
    },
    image: {
      type: 'string',
      description: 'Image repository name without registry, e.g. shop/orders. Default: <project name>/<service name>.',
      pattern: '^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$',
      'x-expected': 'a Docker repository name such as "shop/orders" (lowercase, no registry and no tag)',
    },
    manifests: {
      ...relativePath,
      description:
        'Kubernetes manifests: a directory with kustomization.yaml (or Chart.yaml), a directory of YAML files, or one file.',
    },
    buildArgs: {
      type: 'object',
      description: 'Docker build args. They are part of the content version (tag).',
      propertyNames: {
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        'x-expected': 'a build arg name (letters, digits and "_", not starting with a digit)',
      },
      additionalProperties: { type: ['string', 'number', 'boolean'] },
    },
    target: {
      type: 'string',
      description: 'Build target stage of a multi-stage Dockerfile.',
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      'x-expected': 'a build stage name',
    },
    ports: {
      type: 'array',
      description: 'Port-forwards as "local:remote" (or a single number for the same port on both sides).',
      items: {
        type: ['string', 'integer'],
        pattern: '^[0-9]{1,5}:[0-9]{1,5}$',
        minimum: 1,
        maximum: 65535,
        'x-expected': '"local:remote" with ports between 1 and 65535, e.g. "8080:80"',
      },
    },
    sync: {
      type: 'array',
      description:
        'Files copied into the running container instead of rebuilding. A change rebuilds unless every changed file matches a rule.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['from', 'to'],
        properties: {
          from: {
            type: 'string',
            minLength: 1,
            pattern: '^(?!/)(?!\\.\\./)(?!\\.\\.$)',
            description: 'Glob relative to the service path, e.g. "src/**/*.js".',
            'x-expected': 'a glob relative to the service path (not absolute, not starting with "..")',
          },
          to: {
            type: 'string',
            pattern: '^/',
            description: 'Absolute directory in the container.',
            'x-expected': 'an absolute directory in the container, e.g. /app',
          },
          then: {
            type: ['array', 'string'],
            description: 'Command run in the container after each synced batch: an argv array, or a string run by sh -c.',
            items: { type: 'string' },
            minItems: 1,
            minLength: 1,
          },
        },
      },
    },
  },
} as const;

export const devloopSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'devloop.schema.json',
  title: 'devloop.yaml',
  description: 'devloop project configuration.',
  type: 'object',
  additionalProperties: false,
  required: ['version', 'services'],
  // Extension keys, as in Compose files: a place for YAML anchors shared by services (`<<: *defaults`).
  patternProperties: { '^x-': { description: 'Ignored by devloop; useful for YAML anchors.' } },
  properties: {
    version: { const: 1, description: 'Configuration format version. Always 1.', 'x-expected': '1' },
    name: { ...dnsLabel, description: 'Project name (DNS-1123 label). Default: the directory name of devloop.yaml.' },
    registry: {
      type: 'string',
      description: 'Registry prefix for pushed images, e.g. 127.0.0.1:5000. DEVLOOP_REGISTRY overrides it.',
      pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$',
      'x-expected': 'a registry host with optional port and path, e.g. "127.0.0.1:5000" (no scheme)',
    },
    developer: { ...dnsLabel, description: 'Developer name for per-developer namespaces. DEVLOOP_DEVELOPER overrides it.' },
    namespace: { ...dnsLabel, description: 'Kubernetes namespace. Default: <name>-<developer>.' },
    keepImages: {
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      description: 'Images devloop built to keep per service (the newest), locally and on kind nodes; older ones are removed after a deploy. Default: 3.',
      'x-expected': 'a whole number from 1 to 1000',
    },
    shared: {
      type: 'object',
      additionalProperties: false,
      required: ['baseline'],
      description:
        'A shared cluster: a baseline namespace runs every service at main; `up` deploys only the services whose version differs from the baseline, next to it, and Istio routes requests carrying the developer\'s key (baggage devloop-route=<developer>) to them.',
      properties: {
        baseline: { ...dnsLabel, description: 'The namespace that runs every service at main (deployed by `devloop up --baseline`).' },
        lease: {
          type: 'string',
          pattern: '^[1-9][0-9]*(s|m|h)$',
          description: 'How long a developer\'s forks and routes outlive the last `up` that renewed them. Default: 12h.',
          'x-expected': 'a duration such as "12h", "30m" or "90s"',
        },
      },
    },
    manifests: {
      ...relativePath,
      description:
        'One Kubernetes manifests tree for many services (a kustomization, a Helm chart, a directory of YAML files, or one file). ' +
        'devloop renders it once and gives each service without manifests of its own the objects that are its: workloads by the ' +
        'image their pods run, Services by the pods they select, ConfigMaps, Secrets and ServiceAccounts by the workloads that ' +
        'use them; everything else is deployed with the first such service.',
    },
    services: { type: 'array', description: 'The services of this project.', items: service },
  },
} as const;
