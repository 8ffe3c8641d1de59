/** Why `name` is not a valid service name (a DNS-1123 label, as Kubernetes object names need), or undefined. */
export function serviceNameProblem(name: string): string | undefined {
  if (name === '') return 'the service name is empty';
  if (name.length > 63) return `"${name}" is ${name.length} characters long; a service name has at most 63`;
  if (/[A-Z]/.test(name)) return `"${name}" has upper-case letters; use lower case ("${name.toLowerCase()}")`;
  if (!/^[a-z0-9-]+$/.test(name)) return `"${name}" may only contain lower-case letters, digits and "-"`;
  if (!/^[a-z]/.test(name)) return `"${name}" must start with a letter`;
  if (name.endsWith('-')) return `"${name}" must not end with "-"`;
  return undefined;
}

/** Why `module` is not usable as a Go module path, or undefined. Go's own check runs when the module is built. */
export function goModuleProblem(module: string): string | undefined {
  if (module === '') return 'the Go module path is empty';
  if (module.startsWith('/') || module.endsWith('/')) return `Go module path "${module}" must not start or end with "/"`;
  if (!/^[A-Za-z0-9._~+/-]+$/.test(module)) return `Go module path "${module}" may only contain letters, digits and ._~+-/`;
  if (module.split('/').some((e) => e === '' || e === '.' || e === '..' || e.startsWith('.') || e.endsWith('.'))) {
    return `Go module path "${module}" has an empty, "." or ".." element, or one that starts or ends with "."`;
  }
  return undefined;
}
