export * from './env.js';
export * from './kube.js';
export * from './docker.js';
export * from './mesh.js';
