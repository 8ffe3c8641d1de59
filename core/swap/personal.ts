import type * as k8s from '@kubernetes/client-node';
import type { Kube } from '../deploy/kube.js';
import { serviceHost, withoutRouteTo } from '../route/routes.js';
import { updateVirtualService } from '../route/store.js';
import type { SwapRoute } from './lease.js';
import type { SwapPlan } from './resolve.js';

/**
 * What a personal swap needs from a target that routes by the developer's key (a shared cluster, core/route): the
 * VirtualService that holds a host's routes, and a way to add the developer's swap route under their lease. A target
 * without it offers global swaps only.
 */
export interface PersonalRouting {
  /** The developer's routing key (`devloop-route=<key>`). */
  key: string;
  /**
   * The name of the VirtualService that holds (or will hold) `host`'s routes. Reads only; a user error when devloop
   * may not route the host (no Istio, no permission, a VirtualService devloop did not make).
   */
  holder(host: string): Promise<string>;
  /** Adds (or renews) the swap's route: the developer's keyed requests for `host` go to the agent's Service `to`. */
  route(holder: string, host: string, to: string): Promise<void>;
  /** How often route() is called again while the swap runs (it renews the route's lease). */
  renewEveryMs: number;
}

/**
 * Removes a personal swap's route, if it still sends to this swap's agent (the same developer's newer swap keeps
 * its route). The developer's fork route, if any, serves their keyed requests again.
 */
export async function removeSwapRoute(kube: Kube, namespace: string, route: SwapRoute): Promise<void> {
  await updateVirtualService(kube, namespace, route.virtualService, (vs) => (vs ? withoutRouteTo(vs, route.key, serviceHost(route.destination, namespace)) : undefined));
}

/**
 * The agent's own Service for a personal swap: the swapped Service's ports (names and app protocols kept, so the
 * mesh treats them alike), sending to the agent's pods. The route points here.
 */
export function agentService(name: string, meta: k8s.V1ObjectMeta, plan: SwapPlan, agentSelector: Record<string, string>): k8s.V1Service {
  const original = new Map((plan.service.spec?.ports ?? []).map((p) => [p.port, p]));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { ...meta, name },
    spec: {
      selector: agentSelector,
      ports: plan.ports.map((p) => {
        const o = original.get(p.port);
        return {
          port: p.port,
          targetPort: p.targetPort as unknown as k8s.IntOrString,
          ...(p.name ? { name: p.name } : {}),
          ...(o?.protocol ? { protocol: o.protocol } : {}),
          ...(o?.appProtocol ? { appProtocol: o.appProtocol } : {}),
        };
      }),
    },
  };
}
