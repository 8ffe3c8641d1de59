import type * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { diagnosePod, workloadStatus } from './rollout.js';

const pod = (status: k8s.V1PodStatus): k8s.V1Pod => ({ metadata: { name: 'web-1' }, status });

describe('diagnosePod', () => {
  it('names the image that cannot be pulled', () => {
    const d = diagnosePod(
      pod({ phase: 'Pending', containerStatuses: [{ name: 'web', image: 'r/shop/web:x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "r/shop/web:x"' } } }] }),
    );
    expect(d).toMatchObject({ reason: 'ImagePullBackOff', definitive: true, container: 'web' });
    expect(d?.message).toBe('image r/shop/web:x cannot be pulled (ImagePullBackOff: Back-off pulling image "r/shop/web:x")');
    const nested = diagnosePod(
      pod({ phase: 'Pending', containerStatuses: [{ name: 'web', image: 'r/a:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "r/a:1": ErrImagePull: rpc error: code = NotFound desc = failed to resolve reference "r/a:1": r/a:1: not found' } } }] }),
    );
    expect(nested?.message).toBe('image r/a:1 cannot be pulled (ImagePullBackOff: not found)');
  });

  it('waits out a first pull error', () => {
    const d = diagnosePod(pod({ phase: 'Pending', containerStatuses: [{ name: 'web', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull' } } }] }));
    expect(d?.definitive).toBe(false);
  });

  it('reports a crash loop with the exit code', () => {
    const d = diagnosePod(
      pod({
        phase: 'Running',
        containerStatuses: [{ name: 'web', image: 'i', imageID: '', ready: false, restartCount: 2, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 3, reason: 'Error' } } }],
      }),
    );
    expect(d).toMatchObject({ reason: 'CrashLoopBackOff', definitive: true, message: 'container web keeps exiting (exit code 3, Error), 2 restarts' });
  });

  it('passes on the scheduler message of a pending pod', () => {
    const d = diagnosePod(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.' }] }));
    expect(d).toMatchObject({ reason: 'Pending', definitive: false, message: 'pod cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory.' });
  });

  it('flags a running container that is not ready', () => {
    const d = diagnosePod(pod({ phase: 'Running', containerStatuses: [{ name: 'web', image: 'i', imageID: '', ready: false, restartCount: 0, state: { running: {} } }] }));
    expect(d).toMatchObject({ reason: 'Unready', definitive: false });
    expect(diagnosePod(pod({ phase: 'Running', containerStatuses: [{ name: 'web', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] }))).toBeUndefined();
  });
});

describe('workloadStatus (Deployment)', () => {
  const deployment = (status: k8s.V1DeploymentStatus, generation = 2): k8s.V1Deployment => ({ metadata: { generation }, spec: { replicas: 2, selector: {}, template: {} }, status });

  it('is done only when the controller saw the change and every replica is updated and available', () => {
    expect(workloadStatus('Deployment', deployment({ observedGeneration: 1, updatedReplicas: 2, replicas: 2, availableReplicas: 2 })).done).toBe(false);
    expect(workloadStatus('Deployment', deployment({ observedGeneration: 2, updatedReplicas: 1, replicas: 3, availableReplicas: 2 }))).toMatchObject({ done: false, message: '1 of 2 updated' });
    expect(workloadStatus('Deployment', deployment({ observedGeneration: 2, updatedReplicas: 2, replicas: 3, availableReplicas: 2 })).done).toBe(false);
    expect(workloadStatus('Deployment', deployment({ observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 }))).toMatchObject({ done: true, ready: 2, desired: 2 });
  });

  it('reports an exceeded progress deadline as a failure', () => {
    const st = workloadStatus(
      'Deployment',
      deployment({ observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "x" has timed out progressing.' }] }),
    );
    expect(st.failed).toBe('ProgressDeadlineExceeded');
  });
});
