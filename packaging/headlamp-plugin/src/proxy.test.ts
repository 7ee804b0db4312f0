import { beforeEach, describe, expect, it, vi } from 'vitest';
import { fetchWhoAmI, latestNamespaceSync, onNamespaceSync, syncAllowedNamespaces } from './proxy';

// vi.mock runs before the imports, so the mock function must exist before them too.
const { request } = vi.hoisted(() => ({ request: vi.fn() }));
vi.mock('@kinvolk/headlamp-plugin/lib', () => ({ ApiProxy: { request } }));

function apiProxyError(statusText: string, status: number, message: string): Error {
  const error = new Error(`${statusText} - ${message}`) as Error & { status?: number };
  error.status = status;
  return error;
}

beforeEach(() => {
  request.mockReset();
  localStorage.clear();
});

describe('syncAllowedNamespaces', () => {
  it('stores the listed namespaces for the cluster', async () => {
    localStorage.setItem('cluster_settings.prod', JSON.stringify({ defaultNamespace: 'team-a' }));
    request.mockResolvedValue({ namespaces: ['team-b', 'team-a'] });

    const sync = await syncAllowedNamespaces('prod');

    expect(request).toHaveBeenCalledWith('/lamplighter/namespaces', {
      cluster: 'prod',
      autoLogoutOnAuthError: false,
    });
    expect(sync).toEqual({
      state: { kind: 'namespaces', namespaces: ['team-a', 'team-b'] },
      changed: true,
    });
    expect(JSON.parse(localStorage.getItem('cluster_settings.prod') ?? '')).toEqual({
      defaultNamespace: 'team-a',
      allowedNamespaces: ['team-a', 'team-b'],
    });
    expect(latestNamespaceSync('prod')).toEqual(sync);
  });

  it('notifies listeners until removed', async () => {
    request.mockResolvedValue({ namespaces: ['team-a'] });
    const listener = vi.fn();
    const stopListening = onNamespaceSync(listener);

    const sync = await syncAllowedNamespaces('prod');
    stopListening();
    await syncAllowedNamespaces('prod');

    expect(listener).toHaveBeenCalledTimes(1);
    expect(listener).toHaveBeenCalledWith('prod', sync);
  });

  it('reports no change for the same namespaces', async () => {
    localStorage.setItem(
      'cluster_settings.prod',
      JSON.stringify({ allowedNamespaces: ['team-b', 'team-a'] })
    );
    request.mockResolvedValue({ namespaces: ['team-a', 'team-b'] });
    expect((await syncAllowedNamespaces('prod')).changed).toBe(false);
  });

  it('keeps the setting for an empty list', async () => {
    const stored = JSON.stringify({ allowedNamespaces: ['team-a'] });
    localStorage.setItem('cluster_settings.prod', stored);
    request.mockResolvedValue({ namespaces: [] });

    const sync = await syncAllowedNamespaces('prod');

    expect(sync.state).toEqual({ kind: 'empty' });
    expect(localStorage.getItem('cluster_settings.prod')).toBe(stored);
  });

  it('keeps the setting on an error', async () => {
    request.mockRejectedValue(apiProxyError('Bad Gateway', 502, 'Namespace listing failed'));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});

    const sync = await syncAllowedNamespaces('staging');

    expect(sync.state.kind).toBe('error');
    expect(localStorage.getItem('cluster_settings.staging')).toBeNull();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('Namespace listing failed'));
    warn.mockRestore();
  });
});

describe('fetchWhoAmI', () => {
  it('returns the identity', async () => {
    request.mockResolvedValue({ status: { userInfo: { username: 'alice', groups: ['dev'] } } });
    expect(await fetchWhoAmI('prod')).toEqual({
      kind: 'identity',
      identity: { username: 'alice', uid: '', groups: ['dev'], extra: {} },
    });
    expect(request).toHaveBeenCalledWith('/lamplighter/whoami', {
      cluster: 'prod',
      autoLogoutOnAuthError: false,
    });
  });

  it('returns the Status message of a rejection', async () => {
    request.mockRejectedValue(
      apiProxyError('Unauthorized', 401, 'Unauthorized: the ID token has expired.')
    );
    expect(await fetchWhoAmI('prod')).toEqual({
      kind: 'error',
      message:
        'The cluster proxy rejected GET /lamplighter/whoami (HTTP 401): Unauthorized - Unauthorized: the ID token has expired.',
    });
  });
});
