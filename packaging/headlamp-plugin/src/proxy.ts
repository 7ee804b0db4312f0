// Requests to the cluster proxy through Headlamp, and the allowed namespaces they store.

import { ApiProxy } from '@kinvolk/headlamp-plugin/lib';
import {
  allowedNamespacesOf,
  clusterSettingsKey,
  describeRequestError,
  NAMESPACES_PATH,
  namespacesFromError,
  namespacesFromResponse,
  NamespacesState,
  settingsWithAllowedNamespaces,
  WHO_AM_I_PATH,
  whoAmIFromResponse,
  WhoAmIState,
} from './state';

// A failed request to the plugin's own endpoints must not sign the person out of the cluster,
// which Headlamp does by default on a 401.
function get(cluster: string, path: string): Promise<unknown> {
  return ApiProxy.request(path, { cluster, autoLogoutOnAuthError: false });
}

export async function fetchWhoAmI(cluster: string): Promise<WhoAmIState> {
  try {
    return whoAmIFromResponse(await get(cluster, WHO_AM_I_PATH));
  } catch (error) {
    return { kind: 'error', message: describeRequestError(WHO_AM_I_PATH, error) };
  }
}

export interface NamespaceSync {
  state: NamespacesState;
  // Whether the stored allowed namespaces changed, so views opened before show the old ones.
  changed: boolean;
}

// The latest result per cluster since Headlamp was loaded.
const latestSync = new Map<string, NamespaceSync>();

const syncListeners = new Set<(cluster: string, sync: NamespaceSync) => void>();

export function latestNamespaceSync(cluster: string): NamespaceSync | undefined {
  return latestSync.get(cluster);
}

// Calls listener after every syncAllowedNamespaces, so that each view shows the latest result.
// Returns the function that removes the listener.
export function onNamespaceSync(
  listener: (cluster: string, sync: NamespaceSync) => void
): () => void {
  syncListeners.add(listener);
  return () => syncListeners.delete(listener);
}

// Fetches the namespaces that the cluster proxy lists for the person and stores them as the
// cluster's allowed namespaces in Headlamp's settings. An empty list, a listing that is off and
// an error leave the stored setting as it was.
export async function syncAllowedNamespaces(cluster: string): Promise<NamespaceSync> {
  let state: NamespacesState;
  try {
    state = namespacesFromResponse(await get(cluster, NAMESPACES_PATH));
  } catch (error) {
    state = namespacesFromError(error);
  }

  let changed = false;
  if (state.kind === 'namespaces') {
    const key = clusterSettingsKey(cluster);
    const stored = localStorage.getItem(key);
    changed = [...allowedNamespacesOf(stored)].sort().join('\n') !== state.namespaces.join('\n');
    localStorage.setItem(key, settingsWithAllowedNamespaces(stored, state.namespaces));
  } else if (state.kind === 'error') {
    console.warn(`Lamplighter plugin: ${state.message}`);
  }
  const sync = { state, changed };
  latestSync.set(cluster, sync);
  syncListeners.forEach(listener => listener(cluster, sync));
  return sync;
}
