import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, pushImage, removeImage } from '../support/docker.js';
import { infraEnv, uniqueName } from '../support/env.js';
import { type TestNamespace, createTestNamespace, kube, podLogs, waitForJob } from '../support/kube.js';

// Built FROM the local golang:1.26 stand-in, run on the distroless/static stand-in as the nonroot user.
const MAIN_GO = `package main

import (
	"fmt"
	"os"
	"os/user"
	"runtime"
)

func main() {
	u, err := user.Current()
	name := "unknown"
	if err == nil {
		name = u.Username
	}
	_, certErr := os.Stat("/etc/ssl/certs/ca-certificates.crt")
	fmt.Printf("go-smoke %s user=%s uid=%d certs=%t\\n", runtime.Version(), name, os.Getuid(), certErr == nil)
}
`;

const DOCKERFILE = `FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod main.go ./
RUN go build -o /out/app . && go version
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
`;

describe('a Go image built on the local golang and distroless stand-ins', () => {
  let ns: TestNamespace;
  let image: string;

  beforeAll(async () => {
    image = `${infraEnv().registry}/devloop-e2e/go-smoke:${uniqueName('t')}`;
    await buildImage({ Dockerfile: DOCKERFILE, 'main.go': MAIN_GO, 'go.mod': 'module example.com/gosmoke\n\ngo 1.26\n' }, image);
    await pushImage(image);
    ns = await createTestNamespace('go');
  });

  afterAll(async () => {
    await ns?.cleanup();
    if (image) await removeImage(image);
  });

  it('runs to completion in the cluster as the nonroot user with CA certificates present', async () => {
    await kube().batch.createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'go-smoke' },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: { labels: { app: 'go-smoke' } },
            spec: { restartPolicy: 'Never', containers: [{ name: 'app', image }] },
          },
        },
      },
    });
    await waitForJob(ns.name, 'go-smoke');
    const pods = (await kube().core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=go-smoke' })).items;
    expect(pods).toHaveLength(1);
    const logs = await podLogs(ns.name, pods[0]!.metadata!.name!, 'app');
    expect(logs).toMatch(/^go-smoke go1\.26\.\d+ user=nonroot uid=65532 certs=true\n$/);
  });
});
