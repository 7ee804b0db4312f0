// Turns the cluster proxy's responses into what the plugin shows and stores. These functions
// touch neither the network nor React, so the tests call them directly.

// GET on this path of lamplighter-cluster-proxy returns a SelfSubjectReview of the caller, made
// with the same impersonation as every forwarded request.
export const WHO_AM_I_PATH = '/lamplighter/whoami';
// GET on this path returns {"namespaces": [...]}, the namespaces the caller may see. It fails
// with a Status of code 404 when the cluster proxy's namespaces.mode is set to none.
export const NAMESPACES_PATH = '/lamplighter/namespaces';

export interface Identity {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type WhoAmIState =
  | { kind: 'identity'; identity: Identity }
  | { kind: 'error'; message: string };

export type NamespacesState =
  | { kind: 'namespaces'; namespaces: string[] }
  | { kind: 'empty' }
  | { kind: 'off'; message: string }
  | { kind: 'error'; message: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every(item => typeof item === 'string');
}

// Returns the message of a Kubernetes Status body with status Failure, or null for any other body.
export function failureStatusMessage(body: unknown): string | null {
  if (!isObject(body) || body.kind !== 'Status' || body.status !== 'Failure') {
    return null;
  }
  const code = typeof body.code === 'number' ? ` (code ${body.code})` : '';
  const message = typeof body.message === 'string' && body.message ? body.message : 'no message';
  return `${message}${code}`;
}

// Describes a rejected ApiProxy.request. Headlamp rejects with an Error whose message is the
// HTTP status text, " - " and the message of the Status body, and whose status is the HTTP code.
export function describeRequestError(path: string, error: unknown): string {
  let message = 'unknown error';
  let status: unknown;
  if (error instanceof Error) {
    message = error.message || error.name;
    status = (error as Error & { status?: unknown }).status;
  } else if (typeof error === 'string' && error) {
    message = error;
  } else {
    const statusMessage = failureStatusMessage(error);
    if (statusMessage !== null) {
      return `The cluster proxy rejected GET ${path}: ${statusMessage}`;
    }
  }
  const code = typeof status === 'number' ? ` (HTTP ${status})` : '';
  return `The cluster proxy rejected GET ${path}${code}: ${message}`;
}

// Turns a rejected GET /lamplighter/namespaces into a state. A 404 means that the cluster proxy
// lists no namespaces (namespaces.mode none), which is a setting, not a fault.
export function namespacesFromError(error: unknown): NamespacesState {
  const message = describeRequestError(NAMESPACES_PATH, error);
  const status =
    error instanceof Error ? (error as Error & { status?: unknown }).status : undefined;
  return status === 404 ? { kind: 'off', message } : { kind: 'error', message };
}

// Reads the SelfSubjectReview (authentication.k8s.io/v1) from GET /lamplighter/whoami.
export function whoAmIFromResponse(body: unknown): WhoAmIState {
  const failure = failureStatusMessage(body);
  if (failure !== null) {
    return {
      kind: 'error',
      message: `The cluster proxy rejected GET ${WHO_AM_I_PATH}: ${failure}`,
    };
  }
  const userInfo = isObject(body) && isObject(body.status) ? body.status.userInfo : undefined;
  if (!isObject(userInfo) || typeof userInfo.username !== 'string' || !userInfo.username) {
    return {
      kind: 'error',
      message: `The response of GET ${WHO_AM_I_PATH} is not a SelfSubjectReview with status.userInfo.username.`,
    };
  }
  const extra: Record<string, string[]> = {};
  if (isObject(userInfo.extra)) {
    for (const [key, values] of Object.entries(userInfo.extra)) {
      if (isStringArray(values)) {
        extra[key] = values;
      }
    }
  }
  return {
    kind: 'identity',
    identity: {
      username: userInfo.username,
      uid: typeof userInfo.uid === 'string' ? userInfo.uid : '',
      groups: isStringArray(userInfo.groups) ? userInfo.groups : [],
      extra,
    },
  };
}

// Reads {"namespaces": [...]} from GET /lamplighter/namespaces, sorted and without duplicates.
export function namespacesFromResponse(body: unknown): NamespacesState {
  const failure = failureStatusMessage(body);
  if (failure !== null) {
    return {
      kind: 'error',
      message: `The cluster proxy rejected GET ${NAMESPACES_PATH}: ${failure}`,
    };
  }
  if (!isObject(body) || !isStringArray(body.namespaces)) {
    return {
      kind: 'error',
      message: `The response of GET ${NAMESPACES_PATH} has no "namespaces" list of strings.`,
    };
  }
  const namespaces = [...new Set(body.namespaces.filter(name => name !== ''))].sort();
  return namespaces.length === 0 ? { kind: 'empty' } : { kind: 'namespaces', namespaces };
}

// The localStorage key under which Headlamp's frontend keeps a cluster's settings, among them
// allowedNamespaces (frontend/src/helpers/clusterSettings.ts in Headlamp 0.45.0).
export function clusterSettingsKey(cluster: string): string {
  return `cluster_settings.${cluster}`;
}

// Returns the stored cluster settings with allowedNamespaces replaced and every other setting
// kept. A missing or unreadable value, which Headlamp could not read either, starts anew.
export function settingsWithAllowedNamespaces(stored: string | null, namespaces: string[]): string {
  let settings: Record<string, unknown> = {};
  if (stored) {
    try {
      const parsed: unknown = JSON.parse(stored);
      if (isObject(parsed)) {
        settings = parsed;
      }
    } catch {
      // Replaced below by settings that Headlamp can read.
    }
  }
  return JSON.stringify({ ...settings, allowedNamespaces: namespaces });
}

// Returns the allowed namespaces in the stored cluster settings, or an empty list.
export function allowedNamespacesOf(stored: string | null): string[] {
  if (!stored) {
    return [];
  }
  try {
    const parsed: unknown = JSON.parse(stored);
    return isObject(parsed) && isStringArray(parsed.allowedNamespaces)
      ? parsed.allowedNamespaces
      : [];
  } catch {
    return [];
  }
}
